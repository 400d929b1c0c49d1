// Booth labels: a button per booth over the canvas, placed over its booth every frame,
// the nearest first, with the title near and the booth code far, and left out where they
// would crowd each other or sit under the bottom sheet.
import * as THREE from "three";

const LABEL_TITLE_DISTANCE = 30; // nearer than this a label shows the title, else the booth code
const LABEL_CELL = 12; // pixels: the grid labels are kept apart on

/** A label's size in pixels, far (code only) or near (with the title), measured once each. */
function labelSize(label, far) {
  label.sizes ??= {};
  const key = far ? "far" : "near";
  label.sizes[key] ??= [label.offsetWidth, label.offsetHeight];
  return label.sizes[key];
}

export class Labels {
  /**
   * @param {import("./hall-scene.js").HallScene} hall
   * @param {HTMLElement} layer the labels' parent over the canvas
   */
  constructor(hall, layer) {
    this.hall = hall;
    this.layer = layer;
    this.range = 160; // metres: labels further away are left out (set from the overview)
  }

  /** The booth's label, a pointer's shortcut to picking it. */
  add(booth) {
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
    label.addEventListener("click", () => this.hall.onPick(booth.exhibit));
    this.layer.append(label);
    booth.label = label;
  }

  /** The selected booth's label stands out, and is placed before the others. */
  select(exhibit) {
    for (const booth of this.hall.booths.values()) booth.label.classList.toggle("selected", booth.exhibit === exhibit);
  }

  /**
   * Put each label over its booth, nearest first; a label that would cover one already
   * placed (or sit under the bottom sheet) is left out, so the overview stays readable.
   */
  place() {
    const { container, camera, insetBottom } = this.hall;
    const width = container.clientWidth;
    const height = container.clientHeight - Math.min(insetBottom, container.clientHeight * 0.6);
    const point = new THREE.Vector3();
    const shown = [];
    for (const booth of this.hall.booths.values()) {
      if (booth.dimmed) continue; // hidden by the filter
      point.copy(booth.labelAnchor).project(camera);
      const distance = camera.position.distanceTo(booth.labelAnchor);
      const x = ((point.x + 1) / 2) * container.clientWidth;
      const y = ((1 - point.y) / 2) * container.clientHeight;
      if (point.z > 1 || x < 0 || x > width || y < 0 || y > height || distance > this.range) {
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
}
