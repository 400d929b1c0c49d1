// Exhibits' models at their levels of detail: loaded smallest first, each level replacing
// the one before in place of the hall's own copy, a few booths at a time (the least
// recently shown go back to the hall's copy), dimmed with the filter, freed on the GPU.
import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";

const MAX_DETAILED = 4; // booths showing a model larger than the hall's own (GPU memory on phones)

/** Ask for the br/gzip form of a model file: the server sends X-File-Size with it, which
 * three.js's loader uses as the total, so progress stays true while the bytes shrink. */
export function compressed(url) {
  return `${url}${url.includes("?") ? "&" : "?"}compress=1`;
}

/** Everything a mesh holds on the GPU. */
function dispose(root) {
  root.traverse((node) => {
    if (!node.isMesh) return;
    node.geometry.dispose();
    for (const material of [node.material].flat()) {
      for (const value of Object.values(material)) if (value?.isTexture) value.dispose();
      material.dispose();
    }
  });
}

function isAbort(error) {
  return error?.name === "AbortError";
}

export class Models {
  /**
   * @param {import("./hall-scene.js").HallScene} hall
   * @param {(exhibit: string) => void} onGone a booth is back to the hall's own model
   */
  constructor(hall, onGone) {
    this.hall = hall;
    this.onGone = onGone;
    this.order = []; // exhibit ids with a model of their own, least recently shown first
    this.loading = null; // {exhibit, manager} of the load under way
  }

  /**
   * Load the exhibit's model from its smallest level to its largest, each replacing the
   * one before in place. ``report({level, state, loaded, total})`` follows every level;
   * resolves with the level finally shown, or null if another load took over.
   */
  async load(exhibit, lods, report) {
    this.loading?.manager.abort();
    const booth = this.hall.booths.get(exhibit);
    if (!booth) return null;
    const manager = new THREE.LoadingManager();
    const load = { exhibit, manager };
    this.loading = load;
    const loader = new GLTFLoader(manager);
    const levels = lods.filter((lod) => lod.url).sort((a, b) => b.level - a.level);
    for (const lod of levels) {
      if (booth.detailed && booth.detailed.level <= lod.level) {
        report({ level: lod.level, state: "done", loaded: lod.bytes, total: lod.bytes });
        continue; // already shown (a previous visit)
      }
      report({ level: lod.level, state: "loading", loaded: 0, total: lod.bytes });
      let gltf;
      try {
        gltf = await loader.loadAsync(compressed(lod.url), (event) => {
          report({ level: lod.level, state: "loading", loaded: event.loaded, total: event.total || lod.bytes });
        });
      } catch (error) {
        if (this.loading !== load || isAbort(error)) return null;
        report({ level: lod.level, state: "error", loaded: 0, total: lod.bytes });
        throw error;
      }
      if (this.loading !== load) {
        dispose(gltf.scene);
        return null;
      }
      this.place(booth, gltf.scene, lod.level);
      report({ level: lod.level, state: "done", loaded: lod.bytes, total: lod.bytes });
    }
    if (this.loading === load) this.loading = null;
    return booth.detailed ? booth.detailed.level : null;
  }

  place(booth, model, level) {
    const hall = this.hall;
    const group = new THREE.Group();
    group.name = `model-${booth.exhibit}-lod${level}`;
    group.position.copy(booth.position);
    group.rotation.y = booth.yaw;
    group.add(model);
    hall.scene.add(group);
    group.updateMatrixWorld(true);
    if (booth.detailed) {
      this.remove(booth);
    } else if (hall.parts) {
      // Hide the hall's own copy of the model: the booth's triangles inside the new one.
      const inside = new THREE.Box3().setFromObject(group);
      inside.expandByScalar(Math.max(0.05, inside.getSize(new THREE.Vector3()).length() * 0.03));
      hall.parts.hideModel(booth, inside);
    }
    booth.detailed = { group, level };
    if (booth.dimmed) this.dim(group, true);
    this.order = this.order.filter((id) => id !== booth.exhibit).concat(booth.exhibit);
    while (this.order.length > MAX_DETAILED) this.drop(this.order.shift());
    hall.invalidate();
  }

  /** Back to the hall's own smallest model for this booth. */
  drop(exhibit) {
    const booth = this.hall.booths.get(exhibit);
    if (!booth?.detailed) return;
    this.remove(booth);
    booth.detailed = null;
    this.hall.parts?.hideModel(booth, null);
    this.onGone(exhibit);
    this.hall.invalidate();
  }

  remove(booth) {
    this.hall.scene.remove(booth.detailed.group);
    this.dim(booth.detailed.group, false); // its own materials back, to be disposed
    dispose(booth.detailed.group);
  }

  /** A loaded model drawn with the dim material, or with its own again. */
  dim(group, dimmed) {
    group.traverse((node) => {
      if (!node.isMesh) return;
      if (dimmed) {
        node.userData.material ??= node.material;
        node.material = this.hall.dimMaterial;
      } else if (node.userData.material) {
        node.material = node.userData.material;
        delete node.userData.material;
      }
    });
  }
}
