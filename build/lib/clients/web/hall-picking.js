// Picking: each booth's invisible box that clicks and hovers are tested against, the
// pointer's click (not a drag) that picks a booth, and the frame marking the selected one.
import * as THREE from "three";

const PICK_HEIGHT = 4; // the boxes' height before they are fitted to the hall's booths
const CLICK_PIXELS = 6; // a press that moves further is a drag (orbiting, walking)
const CLICK_MS = 600;

export class Picking {
  /** @param {import("./hall-scene.js").HallScene} hall */
  constructor(hall) {
    this.hall = hall;
    // The booths' pick boxes are never drawn: they live outside the scene.
    this.boxes = new THREE.Group();
    this.raycaster = new THREE.Raycaster();
    this.frame = new THREE.Mesh(
      new THREE.BufferGeometry(),
      new THREE.MeshBasicMaterial({ color: 0x1d7a4f, side: THREE.DoubleSide }),
    );
    this.frame.visible = false;
    hall.scene.add(this.frame);
    this.listen(hall.renderer.domElement);
  }

  /** The booth's pick box over its footprint. */
  add(booth) {
    const [w, d] = booth.footprint;
    booth.pick = new THREE.Mesh(new THREE.BoxGeometry(w, PICK_HEIGHT, d));
    booth.pick.position.set(booth.position.x, booth.floorY + PICK_HEIGHT / 2, booth.position.z);
    booth.pick.rotation.y = booth.yaw;
    booth.pick.userData.exhibit = booth.exhibit;
    this.boxes.add(booth.pick);
  }

  /** The pick box from the floor up to the label: a click just under a label finds its booth. */
  fit(booth) {
    booth.floorY = this.hall.bounds.min.y;
    const height = Math.max(booth.labelAnchor.y - booth.floorY, 1);
    booth.pick.scale.y = height / PICK_HEIGHT;
    booth.pick.position.y = booth.floorY + height / 2;
    booth.pick.updateMatrixWorld();
  }

  /** Frame ``booth`` on the floor, or (none) hide the frame. */
  mark(booth) {
    if (!booth) {
      this.frame.visible = false;
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
    this.frame.geometry.dispose();
    this.frame.geometry = new THREE.ShapeGeometry(outer).rotateX(-Math.PI / 2); // flat on the floor
    this.frame.rotation.y = booth.yaw;
    this.frame.position.set(booth.position.x, Math.max(booth.floorY, booth.position.y) + 0.02, booth.position.z);
    this.frame.visible = true;
  }

  /** The booth under a pointer event, if one is there and not filtered out. */
  boothAt(event) {
    const rect = this.hall.renderer.domElement.getBoundingClientRect();
    const pointer = new THREE.Vector2(
      ((event.clientX - rect.left) / rect.width) * 2 - 1,
      -((event.clientY - rect.top) / rect.height) * 2 + 1,
    );
    this.raycaster.setFromCamera(pointer, this.hall.camera);
    for (const hit of this.raycaster.intersectObjects(this.boxes.children, false)) {
      const booth = this.hall.booths.get(hit.object.userData.exhibit);
      if (booth && !booth.dimmed) return booth;
    }
    return null;
  }

  listen(canvas) {
    let down = null;
    canvas.addEventListener("pointerdown", (event) => {
      down = { x: event.clientX, y: event.clientY, time: event.timeStamp };
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!event.buttons && event.pointerType === "mouse") {
        canvas.style.cursor = this.boothAt(event) ? "pointer" : "";
      }
    });
    canvas.addEventListener("pointerup", (event) => {
      const clicked = down && Math.hypot(event.clientX - down.x, event.clientY - down.y) < CLICK_PIXELS
        && event.timeStamp - down.time < CLICK_MS;
      down = null;
      if (!clicked) return;
      const booth = this.boothAt(event);
      if (booth) this.hall.onPick(booth.exhibit);
    });
    canvas.addEventListener("pointercancel", () => { down = null; });
  }
}
