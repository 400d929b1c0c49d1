// Which triangles of the hall belong to which booth, and drawing them shown, dimmed or hidden.
//
// The hall's GLB merges every booth's parts by material (a few dozen draw calls for
// hundreds of booths), so one mesh holds pieces of many booths. A triangle belongs to the
// booth whose footprint holds all three of its corners. To dim or hide booths, each mesh's
// index buffer is reordered in place into shown, dimmed and hidden runs; two draw groups
// cover the first two, drawn with the mesh's material and the dim material, and the hidden
// run is simply not drawn. The buffer keeps its length, so the GPU copy is updated, never
// reallocated.
import * as THREE from "three";

// The hall's own furniture, by material name: dimmed with its booth, never hidden when a
// larger model replaces the hall's copy of the exhibit's model.
const FURNITURE = /^(hall-floor|aisle-|booth-plinth|booth-wall|board-frame|name-boards)/;

/** Booths by the grid cells their footprints touch, to find a point's booth quickly. */
class BoothGrid {
  constructor(booths) {
    this.cell = Math.max(1, ...booths.map((b) => Math.max(...b.footprint)));
    this.cells = new Map();
    for (const booth of booths) {
      const reach = Math.hypot(...booth.footprint) / 2;
      const [x0, z0] = this.key(booth.position.x - reach, booth.position.z - reach);
      const [x1, z1] = this.key(booth.position.x + reach, booth.position.z + reach);
      for (let x = x0; x <= x1; x++) {
        for (let z = z0; z <= z1; z++) {
          const key = `${x},${z}`;
          if (!this.cells.has(key)) this.cells.set(key, []);
          this.cells.get(key).push(booth);
        }
      }
    }
  }

  key(x, z) {
    return [Math.floor(x / this.cell), Math.floor(z / this.cell)];
  }

  find(x, z) {
    const [cx, cz] = this.key(x, z);
    for (const booth of this.cells.get(`${cx},${cz}`) || []) if (booth.covers(x, z, 0.02)) return booth;
    return null;
  }
}

/** One mesh of the hall with its triangles' owners (booth slot, or -1 for none). */
class Part {
  constructor(mesh, grid, slots, tops, dimMaterial) {
    this.mesh = mesh;
    this.material = mesh.material;
    const geometry = mesh.geometry;
    const position = geometry.attributes.position;
    if (!geometry.index) {
      const Type = position.count > 65535 ? Uint32Array : Uint16Array;
      geometry.setIndex(new THREE.BufferAttribute(Type.from({ length: position.count }, (_, i) => i), 1));
    }
    this.index = geometry.index;
    this.original = this.index.array.slice();
    this.furniture = FURNITURE.test(this.material.name || "") || mesh.userData?.furniture === true;
    const triangles = this.original.length / 3;
    this.owners = new Int32Array(triangles).fill(-1);
    this.hidden = new Uint8Array(triangles);
    this.booths = new Set(); // slots with triangles here
    const corners = [new THREE.Vector3(), new THREE.Vector3(), new THREE.Vector3()];
    for (let t = 0; t < triangles; t++) {
      for (let k = 0; k < 3; k++) corners[k].fromBufferAttribute(position, this.original[t * 3 + k]).applyMatrix4(mesh.matrixWorld);
      const booth = grid.find(corners[0].x, corners[0].z);
      if (!booth || !booth.covers(corners[1].x, corners[1].z, 0.02) || !booth.covers(corners[2].x, corners[2].z, 0.02)) {
        continue;
      }
      const slot = slots.get(booth);
      this.owners[t] = slot;
      this.booths.add(slot);
      tops[slot] = Math.max(tops[slot], corners[0].y, corners[1].y, corners[2].y);
    }
    mesh.material = [this.material, dimMaterial];
    this.layout(new Set());
  }

  /** Reorder the index: shown triangles, then those of ``dimmed`` booths, then hidden ones. */
  layout(dimmed) {
    const out = this.index.array;
    const source = this.original;
    const triangles = this.owners.length;
    let shown = 0;
    for (let t = 0; t < triangles; t++) {
      if (this.hidden[t] || dimmed.has(this.owners[t])) continue;
      out[shown * 3] = source[t * 3];
      out[shown * 3 + 1] = source[t * 3 + 1];
      out[shown * 3 + 2] = source[t * 3 + 2];
      shown++;
    }
    let next = shown;
    for (let t = 0; t < triangles; t++) {
      if (this.hidden[t] || !dimmed.has(this.owners[t])) continue;
      out[next * 3] = source[t * 3];
      out[next * 3 + 1] = source[t * 3 + 1];
      out[next * 3 + 2] = source[t * 3 + 2];
      next++;
    }
    const drawn = next;
    for (let t = 0; t < triangles; t++) {
      if (!this.hidden[t]) continue;
      out[next * 3] = source[t * 3];
      out[next * 3 + 1] = source[t * 3 + 1];
      out[next * 3 + 2] = source[t * 3 + 2];
      next++;
    }
    const geometry = this.mesh.geometry;
    geometry.clearGroups();
    geometry.addGroup(0, shown * 3, 0);
    if (drawn > shown) geometry.addGroup(shown * 3, (drawn - shown) * 3, 1);
    this.index.needsUpdate = true;
  }
}

export class HallParts {
  /**
   * @param {THREE.Object3D} root the hall as loaded
   * @param {Array} booths the scene's booths (``footprint``, ``position``, ``covers(x, z, margin)``)
   * @param {THREE.Material} dimMaterial what dimmed booths are drawn with
   */
  constructor(root, booths, dimMaterial) {
    root.updateMatrixWorld(true);
    this.slots = new Map(booths.map((booth, slot) => [booth, slot]));
    this.tops = new Float64Array(booths.length).fill(-Infinity);
    this.dimmed = new Set();
    const grid = new BoothGrid(booths);
    this.parts = [];
    root.traverse((node) => {
      if (node.isMesh && node.geometry.attributes.position && !Array.isArray(node.material)) {
        this.parts.push(new Part(node, grid, this.slots, this.tops, dimMaterial));
      }
    });
  }

  /** The highest point of the booth's triangles (metres), or -Infinity if it has none. */
  top(booth) {
    return this.tops[this.slots.get(booth)];
  }

  /** Draw the booths in ``booths`` (an iterable) dimmed, all others as they are. */
  dim(booths) {
    const dimmed = new Set([...booths].map((booth) => this.slots.get(booth)));
    const changed = new Set([...dimmed, ...this.dimmed].filter((s) => dimmed.has(s) !== this.dimmed.has(s)));
    this.dimmed = dimmed;
    for (const part of this.parts) {
      if ([...changed].some((slot) => part.booths.has(slot))) part.layout(dimmed);
    }
  }

  /**
   * Hide the booth's exhibit triangles inside ``box`` (the hall's copy of a model now shown
   * larger); ``box`` null shows them again. Furniture stays.
   */
  hideModel(booth, box) {
    const slot = this.slots.get(booth);
    const corner = new THREE.Vector3();
    for (const part of this.parts) {
      if (part.furniture || !part.booths.has(slot)) continue;
      const position = part.mesh.geometry.attributes.position;
      let changed = false;
      for (let t = 0; t < part.owners.length; t++) {
        if (part.owners[t] !== slot) continue;
        let inside = box !== null;
        for (let k = 0; inside && k < 3; k++) {
          corner.fromBufferAttribute(position, part.original[t * 3 + k]).applyMatrix4(part.mesh.matrixWorld);
          inside = box.containsPoint(corner);
        }
        const hidden = inside ? 1 : 0;
        if (part.hidden[t] !== hidden) {
          part.hidden[t] = hidden;
          changed = true;
        }
      }
      if (changed) part.layout(this.dimmed);
    }
  }
}
