// Camera flights: the overview framing the whole hall, the flight to a booth, and the eased
// steps between, which orbit and walk mode alike follow (at once with reduced motion).
import * as THREE from "three";
import { EYE_HEIGHT } from "./hall-walk.js";

const FLIGHT_MS = 900;

const reducedMotion = () => matchMedia("(prefers-reduced-motion: reduce)").matches;
const ease = (t) => (t < 0.5 ? 4 * t * t * t : 1 - (-2 * t + 2) ** 3 / 2);

export class Flights {
  /** @param {import("./hall-scene.js").HallScene} hall */
  constructor(hall) {
    this.hall = hall;
    this.current = null; // {from, to, start} while the camera is on its way
  }

  /** The whole hall, from its front and above. */
  overview(animate = true) {
    const { camera, controls, bounds } = this.hall;
    const centre = bounds.getCenter(new THREE.Vector3());
    const size = bounds.getSize(new THREE.Vector3());
    const span = Math.max(size.x, size.z, 10);
    camera.far = span * 8;
    camera.updateProjectionMatrix();
    controls.maxDistance = span * 2;
    if (this.hall.mode === "walk") this.hall.setMode("orbit");
    const target = centre.clone().setY(bounds.min.y);
    const direction = new THREE.Vector3(0, 1, 1.1).normalize(); // from the front, 42° up
    const distance = this.fitDistance(target, direction);
    const eye = target.clone().addScaledVector(direction, distance);
    this.hall.labels.range = distance * 1.5;
    if (animate) this.start(eye, target);
    else {
      camera.position.copy(eye);
      controls.target.copy(target);
      controls.update();
      this.hall.invalidate();
    }
  }

  /** The nearest distance along ``direction`` from which the whole hall is in view. */
  fitDistance(target, direction) {
    const probe = this.hall.camera.clone();
    const { min, max } = this.hall.bounds;
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

  /** In front of the booth: above it when orbiting, at eye height when walking. */
  toBooth(booth) {
    const size = Math.max(...booth.footprint, 2);
    const front = booth.front;
    const target = booth.position.clone().setY(booth.floorY + 1.2);
    let eye;
    if (this.hall.mode === "walk") {
      eye = booth.position.clone().addScaledVector(front, size / 2 + 3.5).setY(booth.floorY + EYE_HEIGHT);
      target.y = booth.floorY + EYE_HEIGHT - 0.3;
    } else {
      eye = target.clone().addScaledVector(front, size * 1.6 + 4).add(new THREE.Vector3(0, size * 0.6 + 2.5, 0));
    }
    this.start(eye, target);
  }

  start(eye, target) {
    const from = { eye: this.hall.camera.position.clone(), target: this.lookingAt() };
    // With reduced motion the flight's first step is its last.
    this.current = { from, to: { eye, target }, start: reducedMotion() ? -Infinity : performance.now() };
    this.hall.invalidate();
  }

  stop() {
    this.current = null;
  }

  lookingAt() {
    const { camera, controls } = this.hall;
    if (this.hall.mode === "orbit") return controls.target.clone();
    const forward = new THREE.Vector3();
    camera.getWorldDirection(forward);
    return camera.position.clone().addScaledVector(forward, 5);
  }

  /** One frame of the flight; true while it goes on. */
  step(time) {
    const { camera, controls } = this.hall;
    const { from, to, start } = this.current;
    const t = Math.min(Math.max((time - start) / FLIGHT_MS, 0), 1);
    const k = ease(t);
    camera.position.lerpVectors(from.eye, to.eye, k);
    const target = new THREE.Vector3().lerpVectors(from.target, to.target, k);
    if (this.hall.mode === "orbit") {
      controls.target.copy(target);
    } else {
      camera.lookAt(target);
      const euler = new THREE.Euler().setFromQuaternion(camera.quaternion, "YXZ");
      this.hall.walking.face(euler.y, euler.x);
    }
    if (t >= 1) this.current = null;
    return this.current !== null;
  }
}
