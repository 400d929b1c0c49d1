// The hall in three.js: the scene and its lights, the two ways of moving (orbit and walk),
// booths to pick and label, and each exhibit's model swapped in level by level.
//
// It draws only when something changed (a camera move, a model arriving): a phone showing
// a still hall does no work.
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { HallParts } from "./hall-parts.js";

const EYE_HEIGHT = 1.7; // metres: the camera in walk mode
const WALK_SPEED = 4; // metres a second, twice that with Shift
const TURN_SPEED = 1.8; // radians a second
const PICK_HEIGHT = 4; // the invisible boxes clicks are tested against
const LABEL_HEIGHT = 4.4; // above the booth's floor when the hall's meshes give no height
const LABEL_TITLE_DISTANCE = 30; // nearer than this a label shows the title, else the booth code
const LABEL_CELL = 12; // pixels: the grid labels are kept apart on
const MAX_DETAILED = 4; // booths showing a model larger than the hall's own (GPU memory on phones)
const FLIGHT_MS = 900;
const BACKGROUND = 0xe9eef0;
const ENVIRONMENT_INTENSITY = 0.8;

const WALK_KEYS = {
  KeyW: "forward", ArrowUp: "forward", KeyS: "back", ArrowDown: "back",
  KeyA: "left", KeyD: "right", ArrowLeft: "turnLeft", ArrowRight: "turnRight",
  KeyQ: "turnLeft", KeyE: "turnRight",
};

const reducedMotion = () => matchMedia("(prefers-reduced-motion: reduce)").matches;
const ease = (t) => (t < 0.5 ? 4 * t * t * t : 1 - (-2 * t + 2) ** 3 / 2);

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

/** A label's size in pixels, far (code only) or near (with the title), measured once each. */
function labelSize(label, far) {
  label.sizes ??= {};
  const key = far ? "far" : "near";
  label.sizes[key] ??= [label.offsetWidth, label.offsetHeight];
  return label.sizes[key];
}

function isAbort(error) {
  return error?.name === "AbortError";
}

/** One booth of the hall as the scene keeps it. */
class Booth {
  constructor(data, floorY) {
    this.data = data;
    this.exhibit = data.exhibit;
    const [x, y, z] = data.position;
    this.position = new THREE.Vector3(x, y, z);
    this.yaw = THREE.MathUtils.degToRad(data.rotation_y || 0);
    this.footprint = data.footprint || [3, 3];
    this.floorY = floorY;
    this.labelAnchor = new THREE.Vector3(x, y + LABEL_HEIGHT, z);
    this.detailed = null; // {group, level} of the model loaded over the hall's
    this.dimmed = false;
    this.label = null;
    this.pick = null;
  }

  /** The booth's front: glTF models face +z, turned by the booth's rotation. */
  get front() {
    return new THREE.Vector3(Math.sin(this.yaw), 0, Math.cos(this.yaw));
  }

  /** True if the point (x, z) lies on the footprint, grown by ``margin`` metres. */
  covers(x, z, margin = 0) {
    const dx = x - this.position.x;
    const dz = z - this.position.z;
    const cos = Math.cos(-this.yaw);
    const sin = Math.sin(-this.yaw);
    const lx = dx * cos + dz * sin;
    const lz = -dx * sin + dz * cos;
    return Math.abs(lx) <= this.footprint[0] / 2 + margin && Math.abs(lz) <= this.footprint[1] / 2 + margin;
  }
}

export class HallScene {
  /**
   * @param {HTMLElement} container holds the canvas; its size is the view's
   * @param {HTMLElement} labelLayer booth labels are placed in it over the canvas
   * @param {{onPick: (exhibit: string) => void, onModelGone: (exhibit: string) => void}} hooks
   */
  constructor(container, labelLayer, { onPick, onModelGone }) {
    this.container = container;
    this.labelLayer = labelLayer;
    this.onPick = onPick;
    this.onModelGone = onModelGone;
    this.booths = new Map(); // exhibit id -> Booth
    this.mode = "orbit";
    this.walk = { yaw: 0, pitch: 0, held: new Set() };
    this.flight = null;
    this.frame = 0;
    this.lastTick = 0;
    this.detailedOrder = []; // exhibit ids, least recently shown first
    this.modelLoad = null;
    this.bounds = new THREE.Box3(new THREE.Vector3(-20, 0, -20), new THREE.Vector3(20, 5, 20));
    this.insetBottom = 0; // pixels of the view covered by the panel (the bottom sheet on phones)
    this.labelRange = 160; // metres: labels further away are left out (set from the overview)

    this.renderer = new THREE.WebGLRenderer({ antialias: true, powerPreference: "low-power" });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.toneMapping = THREE.NeutralToneMapping; // light plinths and walls stay apart
    this.renderer.domElement.setAttribute("aria-hidden", "true"); // the list beside it is the accessible way in
    container.prepend(this.renderer.domElement);

    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(BACKGROUND);
    this.scene.environment = this.makeEnvironment();
    this.scene.environmentIntensity = ENVIRONMENT_INTENSITY;
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x6f7a72, 1.0));
    const sun = new THREE.DirectionalLight(0xffffff, 1.4);
    sun.position.set(30, 60, 25);
    this.scene.add(sun);

    this.camera = new THREE.PerspectiveCamera(50, 1, 0.1, 2000);
    this.camera.position.set(30, 30, 40);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.enableDamping = true;
    this.controls.screenSpacePanning = false; // pan along the floor
    this.controls.maxPolarAngle = Math.PI / 2 - 0.04; // never below the floor
    this.controls.minDistance = 1.5;
    this.controls.addEventListener("change", () => this.invalidate());

    // The booths' pick boxes are never drawn: they live outside the scene.
    this.pickGroup = new THREE.Group();
    this.raycaster = new THREE.Raycaster();
    this.dimMaterial = new THREE.MeshStandardMaterial({
      color: 0xbfc6c2, transparent: true, opacity: 0.25, depthWrite: false,
    });
    this.selection = this.makeSelectionFrame();
    this.scene.add(this.selection);

    this.listen();
    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
  }

  /**
   * Exhibitors' models are PBR and often metallic: with nothing to reflect, metal turns
   * black. A tiny sky-to-floor gradient is enough to reflect, and far cheaper to prepare
   * than a rendered room (which costs seconds on a software-rendered browser).
   */
  makeEnvironment() {
    const rows = [[120, 126, 122], [190, 196, 192], [226, 232, 236], [255, 255, 255]]; // floor (v = 0) to sky
    const data = new Uint8Array(rows.flatMap((rgb) => [...rgb, 255, ...rgb, 255]));
    const gradient = new THREE.DataTexture(data, 2, rows.length);
    gradient.mapping = THREE.EquirectangularReflectionMapping;
    gradient.colorSpace = THREE.SRGBColorSpace;
    gradient.magFilter = THREE.LinearFilter;
    gradient.needsUpdate = true;
    const pmrem = new THREE.PMREMGenerator(this.renderer);
    const environment = pmrem.fromEquirectangular(gradient).texture;
    pmrem.dispose();
    gradient.dispose();
    return environment;
  }

  // ---- drawing on demand -------------------------------------------------------------

  invalidate() {
    if (!this.frame) this.frame = requestAnimationFrame((t) => this.tick(t));
  }

  tick(time) {
    this.frame = 0;
    const dt = this.lastTick ? Math.min((time - this.lastTick) / 1000, 0.25) : 1 / 60;
    this.lastTick = time;
    let busy = false;
    if (this.flight) busy = this.stepFlight(time) || busy;
    if (this.mode === "walk") busy = this.stepWalk(dt) || busy;
    else busy = this.controls.update(dt) || busy; // true while damping still moves the camera
    this.renderer.render(this.scene, this.camera);
    this.placeLabels();
    if (busy) this.invalidate();
    else this.lastTick = 0;
  }

  resize() {
    const { clientWidth: width, clientHeight: height } = this.container;
    if (!width || !height) return;
    this.renderer.setSize(width, height);
    this.camera.aspect = width / height;
    // Centre the picture in the part of the view the panel leaves uncovered.
    const shift = Math.min(this.insetBottom, height * 0.6) / 2;
    if (shift) this.camera.setViewOffset(width, height, 0, shift, width, height);
    else this.camera.clearViewOffset();
    this.camera.updateProjectionMatrix();
    this.invalidate();
  }

  /** The bottom ``pixels`` of the view are covered (a bottom sheet): frame the rest. */
  setInsetBottom(pixels) {
    if (Math.abs(pixels - this.insetBottom) < 1) return;
    this.insetBottom = pixels;
    this.resize();
  }

  // ---- the hall ----------------------------------------------------------------------

  /** Load the hall's GLB; ``onProgress(loaded, total)`` as bytes arrive. */
  loadHall(url, onProgress) {
    return new Promise((resolve, reject) => {
      new GLTFLoader().load(url, (gltf) => {
        this.hall = gltf.scene;
        this.scene.add(this.hall);
        this.hall.updateMatrixWorld(true);
        const box = new THREE.Box3().setFromObject(this.hall);
        if (!box.isEmpty()) this.bounds = box;
        this.parts = new HallParts(this.hall, [...this.booths.values()], this.dimMaterial);
        for (const booth of this.booths.values()) {
          booth.labelAnchor.y = Math.max(booth.labelAnchor.y, this.parts.top(booth) + 0.4);
          this.fitPickBox(booth);
        }
        this.parts.dim([...this.booths.values()].filter((booth) => booth.dimmed));
        this.overview(false);
        resolve();
      }, (event) => onProgress(event.loaded, event.lengthComputable ? event.total : 0), reject);
    });
  }

  /** Put the booths of the hall's JSON in: a pick box and a label each. */
  setBooths(list) {
    for (const data of list) {
      if (!data.exhibit || !Array.isArray(data.position) || this.booths.has(data.exhibit)) continue;
      const booth = new Booth(data, this.bounds.min.y);
      const [w, d] = booth.footprint;
      booth.pick = new THREE.Mesh(new THREE.BoxGeometry(w, PICK_HEIGHT, d));
      booth.pick.position.set(booth.position.x, booth.floorY + PICK_HEIGHT / 2, booth.position.z);
      booth.pick.rotation.y = booth.yaw;
      booth.pick.userData.exhibit = booth.exhibit;
      this.pickGroup.add(booth.pick);
      booth.label = this.makeLabel(booth);
      this.booths.set(booth.exhibit, booth);
    }
    this.pickGroup.updateMatrixWorld(true);
    this.invalidate();
    return this.booths.size;
  }

  /** The pick box from the floor up to the label: a click just under a label finds its booth. */
  fitPickBox(booth) {
    booth.floorY = this.bounds.min.y;
    const height = Math.max(booth.labelAnchor.y - booth.floorY, 1);
    booth.pick.scale.y = height / PICK_HEIGHT;
    booth.pick.position.y = booth.floorY + height / 2;
    booth.pick.updateMatrixWorld();
  }

  makeLabel(booth) {
    const label = document.createElement("button");
    label.type = "button";
    label.tabIndex = -1; // a pointer's shortcut: keyboards and screen readers use the list
    label.className = "booth-label";
    label.dataset.exhibit = booth.exhibit;
    label.dataset.booth = booth.data.booth || "";
    const code = document.createElement("span");
    code.className = "code";
    code.textContent = booth.data.booth || "";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = booth.data.title_en || booth.data.title_zh || booth.exhibit;
    label.append(code, name);
    label.title = [booth.data.title_en, booth.data.title_zh].filter(Boolean).join(" · ");
    label.addEventListener("click", () => this.onPick(booth.exhibit));
    this.labelLayer.append(label);
    return label;
  }

  // ---- filters and selection ---------------------------------------------------------

  /** Dim every booth whose exhibit is not in ``visible`` (a Set); null shows them all. */
  setFilter(visible) {
    for (const booth of this.booths.values()) {
      const dimmed = visible !== null && !visible.has(booth.exhibit);
      if (dimmed === booth.dimmed) continue;
      booth.dimmed = dimmed;
      booth.label.hidden = dimmed;
      if (booth.detailed) this.dimModel(booth.detailed.group, dimmed);
    }
    this.parts?.dim([...this.booths.values()].filter((booth) => booth.dimmed));
    this.invalidate();
  }

  /** A loaded model drawn with the dim material, or with its own again. */
  dimModel(group, dimmed) {
    group.traverse((node) => {
      if (!node.isMesh) return;
      if (dimmed) {
        node.userData.material ??= node.material;
        node.material = this.dimMaterial;
      } else if (node.userData.material) {
        node.material = node.userData.material;
        delete node.userData.material;
      }
    });
  }

  removeModel(booth) {
    this.scene.remove(booth.detailed.group);
    this.dimModel(booth.detailed.group, false); // its own materials back, to be disposed
    dispose(booth.detailed.group);
  }

  makeSelectionFrame() {
    const frame = new THREE.Mesh(
      new THREE.BufferGeometry(),
      new THREE.MeshBasicMaterial({ color: 0x1d7a4f, side: THREE.DoubleSide }),
    );
    frame.visible = false;
    return frame;
  }

  /** Mark the booth of ``exhibit`` on the floor and fly to it. */
  select(exhibit, { fly = true } = {}) {
    for (const booth of this.booths.values()) booth.label.classList.toggle("selected", booth.exhibit === exhibit);
    const booth = this.booths.get(exhibit);
    if (!booth) {
      this.selection.visible = false;
      this.invalidate();
      return;
    }
    // A band just inside the plot's edge: plots touch their neighbours.
    const [w, d] = booth.footprint;
    const outer = new THREE.Shape();
    outer.moveTo(-w / 2 + 0.05, -d / 2 + 0.05).lineTo(w / 2 - 0.05, -d / 2 + 0.05)
      .lineTo(w / 2 - 0.05, d / 2 - 0.05).lineTo(-w / 2 + 0.05, d / 2 - 0.05).closePath();
    const hole = new THREE.Path();
    hole.moveTo(-w / 2 + 0.3, -d / 2 + 0.3).lineTo(-w / 2 + 0.3, d / 2 - 0.3)
      .lineTo(w / 2 - 0.3, d / 2 - 0.3).lineTo(w / 2 - 0.3, -d / 2 + 0.3).closePath();
    outer.holes.push(hole);
    this.selection.geometry.dispose();
    this.selection.geometry = new THREE.ShapeGeometry(outer).rotateX(-Math.PI / 2); // flat on the floor
    this.selection.rotation.y = booth.yaw;
    this.selection.position.set(booth.position.x, Math.max(booth.floorY, booth.position.y) + 0.02, booth.position.z);
    this.selection.visible = true;
    if (fly) this.flyTo(booth);
    this.invalidate();
  }

  // ---- camera ------------------------------------------------------------------------

  /** The whole hall, from its front and above. */
  overview(animate = true) {
    const centre = this.bounds.getCenter(new THREE.Vector3());
    const size = this.bounds.getSize(new THREE.Vector3());
    const span = Math.max(size.x, size.z, 10);
    this.camera.far = span * 8;
    this.camera.updateProjectionMatrix();
    this.controls.maxDistance = span * 2;
    if (this.mode === "walk") this.setMode("orbit");
    const target = centre.clone().setY(this.bounds.min.y);
    const direction = new THREE.Vector3(0, 1, 1.1).normalize(); // from the front, 42° up
    const distance = this.fitDistance(target, direction);
    const eye = target.clone().addScaledVector(direction, distance);
    this.labelRange = distance * 1.5;
    if (animate) this.startFlight(eye, target);
    else {
      this.camera.position.copy(eye);
      this.controls.target.copy(target);
      this.controls.update();
      this.invalidate();
    }
  }

  /** The nearest distance along ``direction`` from which the whole hall is in view. */
  fitDistance(target, direction) {
    const probe = this.camera.clone();
    const { min, max } = this.bounds;
    const corners = [];
    for (const x of [min.x, max.x]) for (const y of [min.y, max.y]) for (const z of [min.z, max.z]) {
      corners.push(new THREE.Vector3(x, y, z));
    }
    const point = new THREE.Vector3();
    const fits = (distance) => {
      probe.position.copy(target).addScaledVector(direction, distance);
      probe.lookAt(target);
      probe.updateMatrixWorld();
      return corners.every((corner) => {
        point.copy(corner).project(probe);
        return point.z < 1 && Math.abs(point.x) <= 0.94 && Math.abs(point.y) <= 0.94;
      });
    };
    let near = 1;
    let far = Math.max(10, min.distanceTo(max)) * 4;
    for (let i = 0; i < 20; i++) {
      const middle = (near + far) / 2;
      if (fits(middle)) far = middle;
      else near = middle;
    }
    return far;
  }

  flyTo(booth) {
    const size = Math.max(...booth.footprint, 2);
    const front = booth.front;
    const target = booth.position.clone().setY(booth.floorY + 1.2);
    let eye;
    if (this.mode === "walk") {
      eye = booth.position.clone().addScaledVector(front, size / 2 + 3.5).setY(booth.floorY + EYE_HEIGHT);
      target.y = booth.floorY + EYE_HEIGHT - 0.3;
    } else {
      eye = target.clone().addScaledVector(front, size * 1.6 + 4).add(new THREE.Vector3(0, size * 0.6 + 2.5, 0));
    }
    this.startFlight(eye, target);
  }

  startFlight(eye, target) {
    const from = { eye: this.camera.position.clone(), target: this.currentTarget() };
    if (reducedMotion()) {
      this.flight = { from, to: { eye, target }, start: -Infinity };
    } else {
      this.flight = { from, to: { eye, target }, start: performance.now() };
    }
    this.invalidate();
  }

  currentTarget() {
    if (this.mode === "orbit") return this.controls.target.clone();
    const forward = new THREE.Vector3();
    this.camera.getWorldDirection(forward);
    return this.camera.position.clone().addScaledVector(forward, 5);
  }

  stepFlight(time) {
    const { from, to, start } = this.flight;
    const t = Math.min(Math.max((time - start) / FLIGHT_MS, 0), 1);
    const k = ease(t);
    this.camera.position.lerpVectors(from.eye, to.eye, k);
    const target = new THREE.Vector3().lerpVectors(from.target, to.target, k);
    if (this.mode === "orbit") {
      this.controls.target.copy(target);
    } else {
      this.camera.lookAt(target);
      const euler = new THREE.Euler().setFromQuaternion(this.camera.quaternion, "YXZ");
      this.walk.yaw = euler.y;
      this.walk.pitch = euler.x;
    }
    if (t >= 1) this.flight = null;
    return this.flight !== null;
  }

  /** "orbit" (OrbitControls) or "walk" (eye height, keys or drag). */
  setMode(mode) {
    if (mode === this.mode) return;
    this.flight = null;
    const forward = new THREE.Vector3();
    this.camera.getWorldDirection(forward);
    forward.y = 0;
    if (forward.lengthSq() < 1e-6) forward.set(0, 0, -1);
    forward.normalize();
    if (mode === "walk") {
      // Stand a few steps in front of where the orbit was looking.
      const spot = this.controls.target.clone().addScaledVector(forward, -6);
      this.camera.position.set(spot.x, this.bounds.min.y + EYE_HEIGHT, spot.z);
      this.clampToHall(this.camera.position);
      this.walk.yaw = Math.atan2(-forward.x, -forward.z);
      this.walk.pitch = 0;
      this.camera.rotation.set(0, this.walk.yaw, 0, "YXZ");
      this.controls.enabled = false;
    } else {
      const target = this.camera.position.clone().addScaledVector(forward, 8).setY(this.bounds.min.y + 1);
      this.camera.position.addScaledVector(forward, -6).setY(this.bounds.min.y + 9);
      this.controls.target.copy(target);
      this.controls.enabled = true;
      this.controls.update();
    }
    this.walk.held.clear();
    this.mode = mode;
    this.invalidate();
  }

  clampToHall(point) {
    point.x = THREE.MathUtils.clamp(point.x, this.bounds.min.x + 0.5, this.bounds.max.x - 0.5);
    point.z = THREE.MathUtils.clamp(point.z, this.bounds.min.z + 0.5, this.bounds.max.z - 0.5);
  }

  /** Move by ``forward`` and ``right`` metres along the floor, turn by ``turn`` radians. */
  walkBy(forward, right, turn) {
    this.walk.yaw += turn;
    const sin = Math.sin(this.walk.yaw);
    const cos = Math.cos(this.walk.yaw);
    this.camera.position.x += -sin * forward + cos * right;
    this.camera.position.z += -cos * forward - sin * right;
    this.clampToHall(this.camera.position);
    this.camera.rotation.set(this.walk.pitch, this.walk.yaw, 0, "YXZ");
    this.invalidate();
  }

  stepWalk(dt) {
    const held = this.walk.held;
    if (!held.size || this.flight) return false;
    const speed = WALK_SPEED * (held.has("fast") ? 2 : 1) * dt;
    const forward = (held.has("forward") ? 1 : 0) - (held.has("back") ? 1 : 0);
    const right = (held.has("right") ? 1 : 0) - (held.has("left") ? 1 : 0);
    const turn = (held.has("turnLeft") ? 1 : 0) - (held.has("turnRight") ? 1 : 0);
    this.walkBy(forward * speed, right * speed, turn * TURN_SPEED * dt);
    return true;
  }

  // ---- input -------------------------------------------------------------------------

  listen() {
    const canvas = this.renderer.domElement;
    canvas.style.touchAction = "none";
    let down = null;
    canvas.addEventListener("pointerdown", (event) => {
      down = { x: event.clientX, y: event.clientY, lastX: event.clientX, lastY: event.clientY, time: event.timeStamp };
      if (this.mode === "walk") canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (down && this.mode === "walk" && event.buttons) {
        // Drag sideways to turn, up and down to step forward and back (mouse or finger alike).
        const dx = event.clientX - down.lastX;
        const dy = event.clientY - down.lastY;
        down.lastX = event.clientX;
        down.lastY = event.clientY;
        this.walkBy(dy * 0.03, 0, dx * 0.005);
      } else if (!event.buttons && event.pointerType === "mouse") {
        canvas.style.cursor = this.boothAt(event) ? "pointer" : "";
      }
    });
    canvas.addEventListener("pointerup", (event) => {
      const clicked = down && Math.hypot(event.clientX - down.x, event.clientY - down.y) < 6
        && event.timeStamp - down.time < 600;
      down = null;
      if (!clicked) return;
      const booth = this.boothAt(event);
      if (booth) this.onPick(booth.exhibit);
    });
    canvas.addEventListener("pointercancel", () => { down = null; });
    canvas.addEventListener("wheel", (event) => {
      if (this.mode !== "walk") return;
      event.preventDefault();
      this.walkBy(-Math.sign(event.deltaY) * 0.8, 0, 0);
    }, { passive: false });
    canvas.addEventListener("webglcontextlost", (event) => event.preventDefault());

    const typing = (event) => event.target.closest?.("input, textarea, select, [contenteditable]");
    window.addEventListener("keydown", (event) => {
      const action = WALK_KEYS[event.code];
      if (this.mode !== "walk" || !action || typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      event.preventDefault(); // arrows would scroll the panel
      this.walk.held.add(action);
      if (event.shiftKey) this.walk.held.add("fast");
      this.invalidate();
    });
    window.addEventListener("keyup", (event) => {
      const action = WALK_KEYS[event.code];
      if (action) this.walk.held.delete(action);
      if (event.key === "Shift") this.walk.held.delete("fast");
    });
    window.addEventListener("blur", () => this.walk.held.clear());
  }

  /** The booth under a pointer event, if one is there and not filtered out. */
  boothAt(event) {
    const rect = this.renderer.domElement.getBoundingClientRect();
    const pointer = new THREE.Vector2(
      ((event.clientX - rect.left) / rect.width) * 2 - 1,
      -((event.clientY - rect.top) / rect.height) * 2 + 1,
    );
    this.raycaster.setFromCamera(pointer, this.camera);
    for (const hit of this.raycaster.intersectObjects(this.pickGroup.children, false)) {
      const booth = this.booths.get(hit.object.userData.exhibit);
      if (booth && !booth.dimmed) return booth;
    }
    return null;
  }

  // ---- labels ------------------------------------------------------------------------

  /**
   * Put each label over its booth, nearest first; a label that would cover one already
   * placed (or sit under the bottom sheet) is left out, so the overview stays readable.
   */
  placeLabels() {
    const width = this.container.clientWidth;
    const height = this.container.clientHeight - Math.min(this.insetBottom, this.container.clientHeight * 0.6);
    const point = new THREE.Vector3();
    const shown = [];
    for (const booth of this.booths.values()) {
      if (booth.dimmed) continue; // hidden by the filter
      point.copy(booth.labelAnchor).project(this.camera);
      const distance = this.camera.position.distanceTo(booth.labelAnchor);
      const x = ((point.x + 1) / 2) * this.container.clientWidth;
      const y = ((1 - point.y) / 2) * this.container.clientHeight;
      if (point.z > 1 || x < 0 || x > width || y < 0 || y > height || distance > this.labelRange) {
        booth.label.classList.add("off");
      } else {
        shown.push({ booth, x, y, distance, first: booth.label.classList.contains("selected") });
      }
    }
    shown.sort((a, b) => b.first - a.first || a.distance - b.distance);
    const taken = new Set(); // screen cells of LABEL_CELL px already covered by a label
    for (const { booth, x, y, distance } of shown) {
      const label = booth.label;
      const far = distance > LABEL_TITLE_DISTANCE;
      label.classList.toggle("far", far);
      const [w, h] = labelSize(label, far);
      const cells = [];
      for (let cx = Math.floor((x - w / 2) / LABEL_CELL); cx <= Math.floor((x + w / 2) / LABEL_CELL); cx++) {
        for (let cy = Math.floor((y - h) / LABEL_CELL); cy <= Math.floor(y / LABEL_CELL); cy++) cells.push(`${cx},${cy}`);
      }
      const crowded = cells.some((cell) => taken.has(cell));
      label.classList.toggle("off", crowded);
      if (crowded) continue;
      for (const cell of cells) taken.add(cell);
      label.style.transform = `translate(${x.toFixed(1)}px, ${y.toFixed(1)}px) translate(-50%, -100%)`;
    }
  }

  // ---- models ------------------------------------------------------------------------

  /**
   * Load the exhibit's model from its smallest level to its largest, each replacing the
   * one before in place. ``report({level, state, loaded, total})`` follows every level;
   * resolves with the level finally shown, or null if another load took over.
   */
  async loadModel(exhibit, lods, report) {
    this.modelLoad?.manager.abort();
    const booth = this.booths.get(exhibit);
    if (!booth) return null;
    const manager = new THREE.LoadingManager();
    const load = { exhibit, manager };
    this.modelLoad = load;
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
        if (this.modelLoad !== load || isAbort(error)) return null;
        report({ level: lod.level, state: "error", loaded: 0, total: lod.bytes });
        throw error;
      }
      if (this.modelLoad !== load) {
        dispose(gltf.scene);
        return null;
      }
      this.placeModel(booth, gltf.scene, lod.level);
      report({ level: lod.level, state: "done", loaded: lod.bytes, total: lod.bytes });
    }
    if (this.modelLoad === load) this.modelLoad = null;
    return booth.detailed ? booth.detailed.level : null;
  }

  placeModel(booth, model, level) {
    const group = new THREE.Group();
    group.name = `model-${booth.exhibit}-lod${level}`;
    group.position.copy(booth.position);
    group.rotation.y = booth.yaw;
    group.add(model);
    this.scene.add(group);
    group.updateMatrixWorld(true);
    if (booth.detailed) {
      this.removeModel(booth);
    } else if (this.parts) {
      // Hide the hall's own copy of the model: the booth's triangles inside the new one.
      const inside = new THREE.Box3().setFromObject(group);
      inside.expandByScalar(Math.max(0.05, inside.getSize(new THREE.Vector3()).length() * 0.03));
      this.parts.hideModel(booth, inside);
    }
    booth.detailed = { group, level };
    if (booth.dimmed) this.dimModel(group, true);
    this.detailedOrder = this.detailedOrder.filter((id) => id !== booth.exhibit).concat(booth.exhibit);
    while (this.detailedOrder.length > MAX_DETAILED) this.dropModel(this.detailedOrder.shift());
    this.invalidate();
  }

  /** Back to the hall's own smallest model for this booth. */
  dropModel(exhibit) {
    const booth = this.booths.get(exhibit);
    if (!booth?.detailed) return;
    this.removeModel(booth);
    booth.detailed = null;
    this.parts?.hideModel(booth, null);
    this.onModelGone(exhibit);
    this.invalidate();
  }
}

/** Ask for the br/gzip form of a model file: the server sends X-File-Size with it, which
 * three.js's loader uses as the total, so progress stays true while the bytes shrink. */
export function compressed(url) {
  return `${url}${url.includes("?") ? "&" : "?"}compress=1`;
}
