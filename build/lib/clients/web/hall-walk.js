// Walking: first-person navigation at eye height — switching between it and orbiting, keys
// held down, dragging to turn and step, the wheel to step, and staying inside the hall.
import * as THREE from "three";

export const EYE_HEIGHT = 1.7; // metres: the camera in walk mode
const WALK_SPEED = 4; // metres a second, twice that with Shift
const TURN_SPEED = 1.8; // radians a second

const WALK_KEYS = {
  KeyW: "forward", ArrowUp: "forward", KeyS: "back", ArrowDown: "back",
  KeyA: "left", KeyD: "right", ArrowLeft: "turnLeft", ArrowRight: "turnRight",
  KeyQ: "turnLeft", KeyE: "turnRight",
};

export class Walking {
  /** @param {import("./hall-scene.js").HallScene} hall */
  constructor(hall) {
    this.hall = hall;
    this.active = false;
    this.yaw = 0;
    this.pitch = 0;
    this.held = new Set(); // actions of the keys held down
    this.listen(hall.renderer.domElement);
  }

  /** "orbit" (OrbitControls) or "walk" (eye height, keys or drag). */
  setMode(mode) {
    const hall = this.hall;
    if (mode === hall.mode) return;
    hall.flights.stop();
    const { camera, controls, bounds } = hall;
    const forward = new THREE.Vector3();
    camera.getWorldDirection(forward);
    forward.y = 0;
    if (forward.lengthSq() < 1e-6) forward.set(0, 0, -1);
    forward.normalize();
    if (mode === "walk") {
      // Stand a few steps in front of where the orbit was looking.
      const spot = controls.target.clone().addScaledVector(forward, -6);
      camera.position.set(spot.x, bounds.min.y + EYE_HEIGHT, spot.z);
      this.clampToHall(camera.position);
      this.yaw = Math.atan2(-forward.x, -forward.z);
      this.pitch = 0;
      camera.rotation.set(0, this.yaw, 0, "YXZ");
      controls.enabled = false;
    } else {
      const target = camera.position.clone().addScaledVector(forward, 8).setY(bounds.min.y + 1);
      camera.position.addScaledVector(forward, -6).setY(bounds.min.y + 9);
      controls.target.copy(target);
      controls.enabled = true;
      controls.update();
    }
    this.held.clear();
    this.active = mode === "walk";
    hall.invalidate();
  }

  /** Where a flight left the camera looking, as the walk's own heading. */
  face(yaw, pitch) {
    this.yaw = yaw;
    this.pitch = pitch;
  }

  clampToHall(point) {
    const { min, max } = this.hall.bounds;
    point.x = THREE.MathUtils.clamp(point.x, min.x + 0.5, max.x - 0.5);
    point.z = THREE.MathUtils.clamp(point.z, min.z + 0.5, max.z - 0.5);
  }

  /** Move by ``forward`` and ``right`` metres along the floor, turn by ``turn`` radians. */
  walkBy(forward, right, turn) {
    const camera = this.hall.camera;
    this.yaw += turn;
    const sin = Math.sin(this.yaw);
    const cos = Math.cos(this.yaw);
    camera.position.x += -sin * forward + cos * right;
    camera.position.z += -cos * forward - sin * right;
    this.clampToHall(camera.position);
    camera.rotation.set(this.pitch, this.yaw, 0, "YXZ");
    this.hall.invalidate();
  }

  /** One frame of the keys held down; true while there is more to walk. */
  step(dt) {
    const held = this.held;
    if (!held.size || this.hall.flights.current) return false;
    const speed = WALK_SPEED * (held.has("fast") ? 2 : 1) * dt;
    const forward = (held.has("forward") ? 1 : 0) - (held.has("back") ? 1 : 0);
    const right = (held.has("right") ? 1 : 0) - (held.has("left") ? 1 : 0);
    const turn = (held.has("turnLeft") ? 1 : 0) - (held.has("turnRight") ? 1 : 0);
    this.walkBy(forward * speed, right * speed, turn * TURN_SPEED * dt);
    return true;
  }

  listen(canvas) {
    let drag = null; // where the pointer last was while pressed
    canvas.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX, y: event.clientY };
      if (this.active) canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!drag || !this.active || !event.buttons) return;
      // Drag sideways to turn, up and down to step forward and back (mouse or finger alike).
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      drag = { x: event.clientX, y: event.clientY };
      this.walkBy(dy * 0.03, 0, dx * 0.005);
    });
    canvas.addEventListener("pointerup", () => { drag = null; });
    canvas.addEventListener("pointercancel", () => { drag = null; });
    canvas.addEventListener("wheel", (event) => {
      if (!this.active) return;
      event.preventDefault();
      this.walkBy(-Math.sign(event.deltaY) * 0.8, 0, 0);
    }, { passive: false });

    const typing = (event) => event.target.closest?.("input, textarea, select, [contenteditable]");
    window.addEventListener("keydown", (event) => {
      const action = WALK_KEYS[event.code];
      if (!this.active || !action || typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      event.preventDefault(); // arrows would scroll the panel
      this.held.add(action);
      if (event.shiftKey) this.held.add("fast");
      this.hall.invalidate();
    });
    window.addEventListener("keyup", (event) => {
      const action = WALK_KEYS[event.code];
      if (action) this.held.delete(action);
      if (event.key === "Shift") this.held.delete("fast");
    });
    window.addEventListener("blur", () => this.held.clear());
  }
}
