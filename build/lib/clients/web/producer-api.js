// The producer console's API client: the producer's token (with its payload decoded for
// display), every request to /api/v1 signed with it, the watch sockets' URLs that carry it,
// and the errors the console shows when the server refuses or cannot be reached.
import { api, ApiError } from "./common.js";

export { ApiError };

// The payload of a JWT, or null: for display only, the server verifies the signature.
function decodeClaims(token) {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

export class ProducerApi {
  constructor() {
    this.token = "";
    this.claims = null; // the token's decoded payload (display only)
  }

  /** Use ``token`` from now on; false if there is none. */
  signIn(token) {
    this.token = token.trim();
    if (!this.token) return false;
    this.claims = decodeClaims(this.token);
    return true;
  }

  signOut() {
    this.token = "";
    this.claims = null;
  }

  /** One request with the token; every failure is an ApiError (status 0: no answer). */
  async request(path, { method, body } = {}) {
    try {
      return await api(path, { method, body, token: this.token });
    } catch (error) {
      if (error instanceof ApiError) throw error;
      throw new ApiError(0, "network", `the server cannot be reached (${error.message}) · 无法连接服务器`);
    }
  }

  inputs() {
    return this.request("/api/v1/inputs");
  }

  event() {
    return this.request("/api/v1/event");
  }

  async stages() {
    return (await this.request("/api/v1/stages")).stages;
  }

  stage(id) {
    return this.request(`/api/v1/stages/${encodeURIComponent(id)}`);
  }

  /** A producer action on the stage (take, auto, delay); resolves with the server's answer. */
  act(stage, action, body) {
    return this.request(`/api/v1/stages/${encodeURIComponent(stage)}/${action}`, { method: "POST", body });
  }

  /** The stage's program as viewers get it. */
  programUrl(stage) {
    return `/ws/watch/${encodeURIComponent(stage)}${this.query()}`;
  }

  /** One input's own picture, for its preview. */
  inputUrl(input) {
    return `/ws/watch/input/${encodeURIComponent(input)}${this.query()}`;
  }

  query() {
    return `?token=${encodeURIComponent(this.token)}`;
  }
}
