// The hall in three.js: the renderer, the lights and the camera, the booths as the scene
// keeps them, and the drawing loop. What moves the camera (flights, walking), what the
// pointer finds (picking), the labels and the exhibits' models each have a module of their
// own; the scene owns one of each and is all the page talks to.
//
// It draws only when something changed (a camera move, a model arriving): a phone showing
// a still hall does no work.
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { HallParts } from "./hall-parts.js";
import { Flights } from "./hall-flight.js";
import { Walking } from "./hall-walk.js";
import { Picking } from "./hall-picking.js";
import { Labels } from "./hall-labels.js";
import { Models } from "./hall-models.js";

export { compressed } from "./hall-models.js";

const LABEL_HEIGHT = 4.4; // above the booth's floor when the hall's meshes give no height
const BACKGROUND = 0xe9eef0;
const ENVIRONMENT_INTENSITY = 0.8;

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
    this.onPick = onPick;
    this.booths = new Map(); // exhibit id -> Booth
    this.frame = 0;
    this.lastTick = 0;
    this.bounds = new THREE.Box3(new THREE.Vector3(-20, 0, -20), new THREE.Vector3(20, 5, 20));
    this.insetBottom = 0; // pixels of the view covered by the panel (the bottom sheet on phones)

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

    // Filtered-out booths: the hall's own meshes and loaded models alike.
    this.dimMaterial = new THREE.MeshStandardMaterial({
      color: 0xbfc6c2, transparent: true, opacity: 0.25, depthWrite: false,
    });

    const canvas = this.renderer.domElement;
    canvas.style.touchAction = "none";
    canvas.addEventListener("webglcontextlost", (event) => event.preventDefault());
    this.picking = new Picking(this);
    this.walking = new Walking(this);
    this.flights = new Flights(this);
    this.labels = new Labels(this, labelLayer);
    this.models = new Models(this, onModelGone);

    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
  }

  /** "orbit" (OrbitControls) or "walk" (eye height, keys or drag). */
  get mode() {
    return this.walking.active ? "walk" : "orbit";
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
    if (this.flights.current) busy = this.flights.step(time) || busy;
    if (this.mode === "walk") busy = this.walking.step(dt) || busy;
    else busy = this.controls.update(dt) || busy; // true while damping still moves the camera
    this.renderer.render(this.scene, this.camera);
    this.labels.place();
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
        this.building = gltf.scene;
        this.scene.add(this.building);
        this.building.updateMatrixWorld(true);
        const box = new THREE.Box3().setFromObject(this.building);
        if (!box.isEmpty()) this.bounds = box;
        this.parts = new HallParts(this.building, [...this.booths.values()], this.dimMaterial);
        for (const booth of this.booths.values()) {
          booth.labelAnchor.y = Math.max(booth.labelAnchor.y, this.parts.top(booth) + 0.4);
          this.picking.fit(booth);
        }
        this.parts.dim([...this.booths.values()].filter((booth) => booth.dimmed));
        this.flights.overview(false);
        resolve();
      }, (event) => onProgress(event.loaded, event.lengthComputable ? event.total : 0), reject);
    });
  }

  /** Put the booths of the hall's JSON in: a pick box and a label each. */
  setBooths(list) {
    for (const data of list) {
      if (!data.exhibit || !Array.isArray(data.position) || this.booths.has(data.exhibit)) continue;
      const booth = new Booth(data, this.bounds.min.y);
      this.picking.add(booth);
      this.labels.add(booth);
      this.booths.set(booth.exhibit, booth);
    }
    this.picking.boxes.updateMatrixWorld(true);
    this.invalidate();
    return this.booths.size;
  }

  // ---- what the page asks for --------------------------------------------------------

  /** Dim every booth whose exhibit is not in ``visible`` (a Set); null shows them all. */
  setFilter(visible) {
    for (const booth of this.booths.values()) {
      const dimmed = visible !== null && !visible.has(booth.exhibit);
      if (dimmed === booth.dimmed) continue;
      booth.dimmed = dimmed;
      booth.label.hidden = dimmed;
      if (booth.detailed) this.models.dim(booth.detailed.group, dimmed);
    }
    this.parts?.dim([...this.booths.values()].filter((booth) => booth.dimmed));
    this.invalidate();
  }

  /** Mark the booth of ``exhibit`` on the floor and fly to it. */
  select(exhibit, { fly = true } = {}) {
    this.labels.select(exhibit);
    const booth = this.booths.get(exhibit);
    this.picking.mark(booth);
    if (booth && fly) this.flights.toBooth(booth);
    this.invalidate();
  }

  /** The whole hall, from its front and above. */
  overview(animate = true) {
    this.flights.overview(animate);
  }

  setMode(mode) {
    this.walking.setMode(mode);
  }

  /** See Models.load: the exhibit's model level by level, each in place of the one before. */
  loadModel(exhibit, lods, report) {
    return this.models.load(exhibit, lods, report);
  }

  /** Back to the hall's own smallest model for this booth. */
  dropModel(exhibit) {
    this.models.drop(exhibit);
  }
}
