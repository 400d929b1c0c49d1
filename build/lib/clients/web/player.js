// A live player for forumcast's watch protocol (WS /ws/watch/...), built on Media Source
// Extensions. Text frames are JSON events; the binary frame after an "init"/"reinit" event
// is an init segment, every other binary frame is one media fragment (moof+mdat).
//
//   const player = new LivePlayer(videoElement, {onEvent, onStatus});
//   player.play("/ws/watch/main");   // and player.stop()
//
// One MediaSource per connection: a reconnect starts clean at the live edge, whatever
// happened to the server's timeline meanwhile.
//
// A "reinit" (the stage's program switched to a source whose init segment differs: another
// resolution, profile or codec) continues in the same SourceBuffer: the server keeps the
// decode timeline continuous across the switch, so no timestampOffset is needed; a changed
// codec string goes through SourceBuffer.changeType before the new init segment is appended.
// Where changeType is missing or cannot help (the set of tracks changed), the connection
// renews its MediaSource in place, keeps the socket, and starts again from the new init.

const KEEP_BEHIND = 30; // seconds of media kept behind currentTime
const MAX_LATENCY = 3; // seconds behind the buffered end before jumping to the live edge
const LIVE_OFFSET = 0.5; // where a jump lands, before the buffered end
const MAX_QUEUE_BYTES = 16 * 1024 * 1024; // appends waiting while the SourceBuffer is busy
const BACKOFF = [500, 1000, 2000, 4000, 8000, 15000]; // ms between reconnect attempts
const TICK_MS = 250; // how often the playhead is checked (gaps, latency)
const GAP_SLACK = 0.15; // seconds before a range's end at which a stalled playhead skips the gap
const VIDEO_CODECS = /^(avc[1-4]|hvc1|hev1|vp0?8|vp0?9|av01|dv[ha][e1v])/i;

// The kinds of tracks a MIME type's codecs list names, e.g. "audio,video".
export function trackKinds(mime) {
  const match = /codecs\s*=\s*"?([^";]*)"?/i.exec(mime || "");
  if (!match) return "";
  return match[1].split(",").map((codec) => (VIDEO_CODECS.test(codec.trim()) ? "video" : "audio"))
    .sort().join(",");
}

export function canChangeType() {
  return typeof SourceBuffer !== "undefined" && typeof SourceBuffer.prototype.changeType === "function";
}

export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

// Close codes (and HTTP statuses of a refused upgrade) that retrying cannot fix.
const FATAL = {
  4401: "invitation needed",
  4403: "invitation needed",
  401: "invitation needed",
  403: "invitation needed",
  4404: "no such stage",
  404: "no such stage",
};

export class LivePlayer {
  constructor(video, { onEvent = () => {}, onStatus = () => {} } = {}) {
    this.video = video;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.path = null;
    this.attempt = 0;
    this.timer = null;
    this.conn = null;
    this.onVideoError = () => this.restart("the video could not be decoded");
    video.addEventListener("error", this.onVideoError);
    // A stall (a gap at a switch) is handled at once, not at the next tick.
    this.onWaiting = () => this.conn?.keepLive();
    video.addEventListener("waiting", this.onWaiting);
    this.tick = setInterval(() => this.conn?.keepLive(), TICK_MS);
  }

  // Start playing the stream at `path` (e.g. "/ws/watch/main?token=..."), replacing any other.
  play(path) {
    this.stop();
    this.path = path;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.path = null;
    clearTimeout(this.timer);
    this.conn?.close();
    this.conn = null;
  }

  destroy() {
    this.stop();
    clearInterval(this.tick);
    this.video.removeEventListener("error", this.onVideoError);
    this.video.removeEventListener("waiting", this.onWaiting);
  }

  status(state, text) {
    this.onStatus({ state, text });
  }

  connect() {
    const path = this.path;
    this.status("connecting", "connecting…");
    this.conn = new Connection(this, path);
  }

  // Called by a connection that ended: retry with backoff unless it cannot help.
  ended(conn, { code, reason, opened }) {
    if (conn !== this.conn || this.path === null) return;
    this.conn = null;
    if (FATAL[code]) {
      this.status(code === 404 || code === 4404 ? "error" : "locked", FATAL[code]);
      this.path = null;
      return;
    }
    if (opened && conn.gotMedia) this.attempt = 0;
    const base = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)];
    const delay = base / 2 + Math.random() * base / 2;
    this.attempt += 1;
    this.status("reconnecting", `${reason || "disconnected"}; reconnecting in ${Math.round(delay / 100) / 10} s`);
    this.timer = setTimeout(() => {
      if (this.path !== null && this.conn === null) this.connect();
    }, delay);
  }

  // Drop the current connection and start a fresh one (soon, with backoff).
  restart(reason) {
    const conn = this.conn;
    if (!conn) return;
    conn.close();
    this.ended(conn, { code: 0, reason, opened: true });
  }
}

// One WebSocket and the MediaSource it feeds.
class Connection {
  constructor(player, path) {
    this.player = player;
    this.video = player.video;
    this.path = path;
    this.closed = false;
    this.opened = false;
    this.gotMedia = false;
    this.expectInit = false;
    this.objectUrl = null;
    this.openMedia();

    this.ws = new WebSocket(wsUrl(path));
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => {
      this.opened = true;
      this.player.status("waiting", "connected, waiting for the stream…");
    };
    this.ws.onmessage = (message) => this.onMessage(message);
    this.ws.onclose = (event) => this.onClose(event);
  }

  // A fresh MediaSource on the video element, with nothing buffered or queued: the next
  // init segment starts it (the first one, or a reinit the SourceBuffer cannot take).
  openMedia() {
    const old = this.objectUrl;
    this.started = false;
    this.mime = null;
    this.sourceBuffer = null;
    this.queue = []; // {op: "append", data} | {op: "type", mime} | {op: "remove", start, end}
    this.queuedBytes = 0;
    const mediaSource = new MediaSource();
    this.mediaSource = mediaSource;
    this.objectUrl = URL.createObjectURL(mediaSource);
    this.sourceOpen = new Promise((resolve) => mediaSource.addEventListener("sourceopen", resolve, { once: true }));
    this.video.src = this.objectUrl;
    if (old) URL.revokeObjectURL(old);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.ws.onclose = null;
    this.ws.close(1000);
    this.queue = [];
    this.video.removeAttribute("src");
    this.video.load();
    URL.revokeObjectURL(this.objectUrl);
  }

  async onClose(event) {
    if (this.closed) return;
    let code = event.code;
    let reason = event.reason;
    if (!this.opened) {
      // A refused upgrade looks like 1006 to a page; ask the same URL over plain HTTP,
      // which answers with the status and JSON error of the refusal.
      const refusal = await probe(this.path);
      if (refusal) ({ code, reason } = refusal);
    }
    this.close();
    this.player.ended(this, { code, reason, opened: this.opened });
  }

  onMessage({ data }) {
    if (this.closed) return;
    if (typeof data === "string") {
      let event;
      try {
        event = JSON.parse(data);
      } catch {
        return;
      }
      if (event.type === "init" || event.type === "reinit") {
        // The next binary frame is the init segment: set the type up for it first.
        this.expectInit = true;
        this.setType(event.mime);
      } else if (event.type === "error") {
        this.player.status("error", event.message || event.code);
      }
      this.player.onEvent(event);
      return;
    }
    if (this.expectInit) {
      this.expectInit = false;
      if (this.mime !== null) this.push({ op: "append", data, init: true });
    } else if (this.mime !== null) {
      this.gotMedia = true;
      this.push({ op: "append", data });
    }
  }

  // Get ready for an init segment of type `mime`.
  setType(mime) {
    if (!MediaSource.isTypeSupported(mime)) {
      this.player.status("error", `this browser cannot play ${mime}`);
      this.player.path = null;
      this.close();
      return;
    }
    if (this.mime === null) {
      this.mime = mime;
      const mediaSource = this.mediaSource;
      this.sourceOpen.then(() => {
        if (this.closed || mediaSource !== this.mediaSource) return; // renewed meanwhile
        let sb;
        try {
          sb = mediaSource.addSourceBuffer(this.mime);
        } catch (error) {
          this.player.restart(`media error: ${error.message}`);
          return;
        }
        sb.mode = "segments"; // the fragments' own decode times: the server keeps them continuous
        sb.addEventListener("updateend", () => {
          if (sb === this.sourceBuffer) this.afterUpdate();
        });
        this.sourceBuffer = sb;
        this.pump();
      });
    } else if (mime !== this.mime) {
      // A reinit with another codec string. The queued media before it still belongs to the
      // old type: changeType runs after it, then the new init segment is appended.
      const sameTracks = trackKinds(mime) === trackKinds(this.mime);
      if (this.sourceBuffer && sameTracks && canChangeType()) {
        this.mime = mime;
        this.push({ op: "type", mime });
      } else {
        this.renew(mime);
      }
    }
    // The same type (another resolution or profile level of the same codecs): the new
    // init segment is simply appended after the media queued before it.
  }

  // Replace the MediaSource (keeping the socket) and go on with `keep`, the queued items
  // that belong to the new init (none when the init segment has not arrived yet).
  renew(mime, keep = []) {
    this.openMedia();
    this.setType(mime);
    for (const item of keep) this.push(item);
  }

  push(item) {
    this.queue.push(item);
    if (item.data) this.queuedBytes += item.data.byteLength;
    if (this.queuedBytes > MAX_QUEUE_BYTES) {
      // The page cannot keep up (a hidden tab, a slow device): start again at the live edge.
      this.player.restart("fell behind");
      return;
    }
    this.pump();
  }

  // Run queued operations one at a time: a SourceBuffer takes one while not `updating`.
  pump() {
    const sb = this.sourceBuffer;
    while (!this.closed && sb && sb === this.sourceBuffer && !sb.updating && this.queue.length) {
      const item = this.queue.shift();
      try {
        if (item.op === "append") {
          this.queuedBytes -= item.data.byteLength;
          sb.appendBuffer(item.data);
        } else if (item.op === "remove") {
          sb.remove(item.start, item.end);
        } else if (item.op === "type") {
          sb.changeType(item.mime); // synchronous: go on with the next item (the new init)
        }
      } catch (error) {
        this.failed(item, error);
      }
    }
  }

  failed(item, error) {
    if (item.op === "type") {
      // This SourceBuffer cannot switch to the new codecs: a new MediaSource takes the new
      // init segment and what follows it.
      this.renew(item.mime, this.queue.splice(0));
      return;
    }
    if (error.name === "QuotaExceededError" && item.op === "append") {
      // The buffer is full: free everything before (almost) currentTime, then retry.
      this.queue.unshift(item);
      this.queuedBytes += item.data.byteLength;
      const sb = this.sourceBuffer;
      const until = this.video.currentTime - 1;
      if (sb.buffered.length && sb.buffered.start(0) < until) {
        this.queue.unshift({ op: "remove", start: 0, end: until });
      } else {
        this.player.restart("the media buffer is full");
      }
      return;
    }
    this.player.restart(`media error: ${error.message}`);
  }

  afterUpdate() {
    if (this.closed) return;
    this.trim();
    this.keepLive();
    this.pump();
  }

  // Remove what lies more than KEEP_BEHIND seconds behind the playhead.
  trim() {
    const sb = this.sourceBuffer;
    if (!sb.buffered.length || this.queue.some((item) => item.op === "remove")) return;
    const until = this.video.currentTime - KEEP_BEHIND;
    if (sb.buffered.start(0) < until) this.queue.push({ op: "remove", start: 0, end: until });
  }

  // Start playback once there is media, stay within MAX_LATENCY of the live edge, and skip
  // the gaps a stalled playhead would otherwise wait at forever.
  keepLive() {
    const sb = this.sourceBuffer;
    if (this.closed || !sb || !sb.buffered.length) return;
    const video = this.video;
    if (this.started && video.paused) return; // paused by the viewer: leave the playhead alone
    const ranges = sb.buffered;
    const end = ranges.end(ranges.length - 1);
    const now = video.currentTime;
    let current = -1;
    let next = -1;
    for (let i = 0; i < ranges.length; i++) {
      if (ranges.start(i) <= now && now < ranges.end(i)) current = i;
      else if (next === -1 && ranges.start(i) > now) next = i;
    }
    if (!this.started || end - now > MAX_LATENCY) {
      video.currentTime = Math.max(ranges.start(ranges.length - 1), end - LIVE_OFFSET);
    } else if (next !== -1) {
      // Outside any range, or waiting at the end of one with more media after a gap (a
      // lost fragment, a switch): go on at the next range.
      const stalled = video.readyState < HTMLMediaElement.HAVE_FUTURE_DATA;
      if (current === -1 || (stalled && ranges.end(current) - now < GAP_SLACK)) {
        video.currentTime = ranges.start(next);
      }
    }
    // A little faster when a bit behind, to get back near the edge without a jump.
    video.playbackRate = end - video.currentTime > 1.5 ? 1.05 : 1;
    if (!this.started) {
      this.started = true;
      this.player.status("playing", "live");
      video.play().catch(() => this.player.status("paused", "press play to start"));
    }
  }
}

// What a plain GET says about a WebSocket URL that refused to upgrade: {code, reason} or null.
export async function probe(path) {
  try {
    const response = await fetch(path, { cache: "no-store" });
    if (response.ok || response.status === 400) return null; // would have upgraded
    const body = await response.json().catch(() => ({}));
    return { code: response.status, reason: body?.error?.message || response.statusText };
  } catch {
    return null;
  }
}
