// A live player for a stage's Low-Latency HLS (GET /live/{stage}/index.m3u8): the browser's
// own HLS where it is Apple's (Safari, iOS: low-latency HLS built in) or the only way (no
// Media Source Extensions), else hls.js (vendored, loaded on first use) in low-latency mode.
//
// Chromium answers canPlayType("application/vnd.apple.mpegurl") with "maybe" since it got a
// built-in HLS player, but that one loads whole segments: several seconds behind where
// hls.js, reading parts, stays within about a second of the edge. So a "yes" from
// canPlayType alone does not pick the native player.
//
//   const player = new HlsPlayer(videoElement, {onStatus});
//   player.play("/live/main/index.m3u8?token=...");   // and player.stop()
//
// The server carries the query of the multivariant playlist (for a closed stage, the
// token) into every URL below it, so the player only needs the one URL. Those URLs carry
// nothing per viewer (a CDN caches one copy), so while it plays the player counts itself:
// a viewer id signed by the server (POST viewer-id), then POST heartbeat every `interval`
// seconds, both beside the playlist and with its query. A switch of the stage's program is an EXT-X-DISCONTINUITY (and, after a re-init, a
// new EXT-X-MAP) in the media playlist: both players go through it on their own.
//
// What retrying cannot fix (no invitation, no such stage) ends playback with a status; any
// other failure starts the stream again at the live edge after a backoff.

const HLS_MIME = "application/vnd.apple.mpegurl";
const HLS_JS = "./vendor/hls/hls.light.min.mjs";
const BACKOFF = [500, 1000, 2000, 4000, 8000, 15000]; // ms between restarts
const FATAL = { 401: "invitation needed", 403: "invitation needed", 404: "no such stage" };
const BEAT_RETRY = 5; // s before trying again when the server gave no interval

// Whether this browser can play the WebSocket stream (Media Source Extensions).
export function mseAvailable() {
  return typeof window.MediaSource === "function" && typeof MediaSource.isTypeSupported === "function";
}

// Whether `video` plays HLS by itself (Safari, iOS, Chromium since its built-in player).
export function nativeHls(video) {
  return video.canPlayType(HLS_MIME) !== "";
}

// Whether to let the browser play HLS itself: where it can, and it is Apple's player (with
// low-latency HLS) or there is nothing else (no MSE for hls.js).
export function preferNativeHls(video) {
  if (!nativeHls(video)) return false;
  const apple = /^Apple/.test(navigator.vendor || "");
  return apple || !(mseAvailable() || typeof window.ManagedMediaSource === "function");
}

let hlsModule = null; // the hls.js module, once loaded

async function loadHlsJs() {
  hlsModule ??= import(HLS_JS).then((module) => module.default);
  return hlsModule;
}

export class HlsPlayer {
  constructor(video, { onStatus = () => {}, preferNative = true } = {}) {
    this.video = video;
    this.onStatus = onStatus;
    this.preferNative = preferNative;
    this.url = null;
    this.hls = null; // the hls.js instance, when that is what plays
    this.engine = null; // "native" | "hls.js" while playing
    this.attempt = 0;
    this.timer = null;
    this.beatTimer = null;
    this.viewer = null; // the signed viewer id of this playback, once the server gave one
    this.interval = null; // s between heartbeats, as the server said
    this.run = 0; // bumped at every start and stop: late callbacks of an older run do nothing
    this.onPlaying = () => {
      if (this.url === null) return;
      this.attempt = 0;
      this.status("playing", "live");
    };
    this.onWaiting = () => {
      if (this.url !== null) this.status("waiting", "buffering…");
    };
    this.onNativeError = () => {
      if (this.url !== null && this.engine === "native") this.nativeFailed();
    };
    video.addEventListener("playing", this.onPlaying);
    video.addEventListener("waiting", this.onWaiting);
    video.addEventListener("error", this.onNativeError);
  }

  // Start playing the multivariant playlist at `url`, replacing anything else.
  play(url) {
    this.stop();
    this.url = url;
    this.attempt = 0;
    this.viewer = null;
    this.interval = null;
    this.start();
  }

  stop() {
    this.run += 1;
    this.url = null;
    clearTimeout(this.timer);
    clearTimeout(this.beatTimer);
    this.detach();
  }

  destroy() {
    this.stop();
    this.video.removeEventListener("playing", this.onPlaying);
    this.video.removeEventListener("waiting", this.onWaiting);
    this.video.removeEventListener("error", this.onNativeError);
  }

  status(state, text) {
    this.onStatus({ state, text });
  }

  detach() {
    const hadMedia = this.engine !== null;
    this.hls?.destroy();
    this.hls = null;
    this.engine = null;
    delete this.video.dataset.engine;
    if (hadMedia) {
      this.video.removeAttribute("src");
      this.video.load();
    }
  }

  // Heartbeats while this run plays (none while paused: a page nobody plays is no viewer).
  async beat(run) {
    if (run !== this.run) return;
    let interval = this.interval ?? BEAT_RETRY;
    if (!this.video.paused) [this.viewer, interval] = await heartbeat(this.url, this.viewer, interval);
    this.interval = interval;
    if (run === this.run) this.beatTimer = setTimeout(() => this.beat(run), interval * 1000);
  }

  async start() {
    const run = ++this.run;
    const url = this.url;
    clearTimeout(this.beatTimer);
    this.beatTimer = setTimeout(() => this.beat(run), 1000);
    this.status("connecting", "connecting…");
    if (this.preferNative && preferNativeHls(this.video)) {
      this.engine = "native";
      this.video.dataset.engine = "native"; // which player plays, for styling and tests
      this.video.src = url;
      this.autoplay();
      return;
    }
    let Hls;
    try {
      Hls = await loadHlsJs();
    } catch (error) {
      hlsModule = null;
      if (run === this.run) this.failed(`the HLS player could not be loaded (${error.message})`);
      return;
    }
    if (run !== this.run) return;
    if (!Hls.isSupported()) {
      this.status("error", "this browser cannot play HLS");
      this.url = null;
      return;
    }
    const hls = new Hls({
      lowLatencyMode: true, // blocking playlist reloads and parts, PART-HOLD-BACK from the edge
      enableWorker: false, // fMP4 needs no transmuxing worker (and the ESM build has none inline)
      backBufferLength: 30, // seconds kept behind the playhead, as the WebSocket player does
      liveDurationInfinity: true,
      maxLiveSyncPlaybackRate: 1.05, // catch up gently rather than jump, like the WebSocket player
    });
    this.hls = hls;
    this.engine = "hls.js";
    this.video.dataset.engine = "hls.js";
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      if (run === this.run) this.autoplay();
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (run !== this.run || !data.fatal) return;
      const code = data.response?.code;
      if (FATAL[code]) {
        this.giveUp({ code, reason: FATAL[code] });
      } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && this.attempt < 2) {
        this.attempt += 1;
        hls.recoverMediaError();
      } else {
        this.failed(`${data.type}: ${data.details}`);
      }
    });
    hls.loadSource(url);
    hls.attachMedia(this.video);
  }

  autoplay() {
    this.status("waiting", "waiting for the stream…");
    this.video.play().catch((error) => {
      if (error.name === "NotAllowedError") this.status("paused", "press play to start");
    });
  }

  // The native player says only that it failed: ask the server why (a refusal is for good).
  async nativeFailed() {
    const run = this.run;
    const refusal = await refused(this.url);
    if (run !== this.run) return;
    if (refusal) this.giveUp(refusal);
    else this.failed("the stream could not be played");
  }

  giveUp({ code, reason }) {
    this.detach();
    this.url = null;
    this.status(code === 404 ? "error" : "locked", reason);
  }

  // Something went wrong that a fresh start may fix: start again at the live edge, later.
  failed(reason) {
    const url = this.url;
    this.stop();
    this.url = url;
    const base = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)];
    const delay = base / 2 + Math.random() * base / 2;
    this.attempt += 1;
    this.status("reconnecting", `${reason}; retrying in ${Math.round(delay / 100) / 10} s`);
    this.timer = setTimeout(() => {
      if (this.url === url) this.start();
    }, delay);
  }
}

// Why the multivariant playlist at `url` is refused for good ({code, reason}), or null.
async function refused(url) {
  try {
    const response = await fetch(url, { cache: "no-store" });
    if (!FATAL[response.status]) return null;
    const body = await response.json().catch(() => ({}));
    return { code: response.status, reason: FATAL[response.status], detail: body?.error?.message };
  } catch {
    return null; // the players will retry and say so
  }
}

// One heartbeat for the playback of `url` as `viewer` (a new id first when there is none or
// it was refused): [viewer, seconds until the next one]. Failures only delay it.
async function heartbeat(url, viewer, interval) {
  const beside = (name) => {
    const target = new URL(url, location.href);
    target.pathname = target.pathname.replace(/[^/]*$/, name);
    return target.href;
  };
  try {
    if (viewer === null) {
      const response = await fetch(beside("viewer-id"), { method: "POST", cache: "no-store" });
      if (!response.ok) return [null, BEAT_RETRY];
      ({ id: viewer, interval } = await response.json());
    }
    const response = await fetch(beside("heartbeat"), {
      method: "POST",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: viewer }),
    });
    return [response.status === 422 ? null : viewer, interval];
  } catch {
    return [viewer, BEAT_RETRY];
  }
}
