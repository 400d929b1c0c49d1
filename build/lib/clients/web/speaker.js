// The remote speaker page: camera + microphone -> MediaRecorder (fragmented MP4) ->
// WS /ws/publish/{input}. The server answers with tally (on air or not), stats and errors.
import { $, takeFromUrl } from "./common.js";
import { LivePlayer, probe, wsUrl } from "./player.js";

// Fragmented MP4 in the order we want it; the first one this browser can record wins.
const MIMES = [
  "video/mp4;codecs=avc1,opus",
  "video/mp4;codecs=avc1,mp4a.40.2",
  "video/mp4;codecs=vp9,opus",
];
const TIMESLICE_MS = 200;
const BACKOFF = [500, 1000, 2000, 4000, 8000];
const SLOW_UPLOAD_BYTES = 4 * 1024 * 1024; // queued in the socket: the uplink cannot keep up

const params = new URLSearchParams(location.search);
$("input-id").value = params.get("input") || "";
$("stage-id").value = params.get("stage") || "";
// The stream key and an invitation leave the address bar at once; this tab keeps them, so
// a reload still has them.
const secrets = takeFromUrl("key", "token");
for (const [name, value] of Object.entries(secrets)) {
  if (value) sessionStorage.setItem(`forumcast.speaker.${name}`, value);
}
$("stream-key").value = secrets.key || sessionStorage.getItem("forumcast.speaker.key") || "";
const token = secrets.token || sessionStorage.getItem("forumcast.speaker.token") || "";

const state = {
  stream: null, // the camera and microphone
  mime: null,
  wanted: false, // the speaker pressed Go live and not Stop
  socket: null,
  recorder: null,
  published: false, // a connection of this go-live was accepted: reconnect with takeover
  attempt: 0,
  retry: null,
};

function showError(text) {
  $("error").textContent = text || "";
}

const TALLY = {
  off: "OFF · 未连接",
  connecting: "Connecting… · 连接中",
  standby: "Standby, not on air · 待命，未播出",
  preview: "PREVIEW · 预览中",
  "on-air": "ON AIR · 直播中",
};

// The return feed's stage, as the last tally named it (unless the speaker typed another).
let tallyStage = "";

function setTally(mode, stage) {
  const tally = $("tally");
  tally.dataset.state = mode;
  tally.textContent = TALLY[mode];
  const field = $("stage-id");
  if (stage && (!field.value || field.value === tallyStage)) field.value = stage;
  if (stage) tallyStage = stage;
}

// A tally message: on air wins over preview; neither is standby.
function tallyMode(message) {
  if (message.on_air) return "on-air";
  return message.preview ? "preview" : "standby";
}

function pickMime() {
  if (typeof MediaRecorder === "undefined") return null;
  return MIMES.find((mime) => MediaRecorder.isTypeSupported(mime)) || null;
}

function publishPath(takeover) {
  const input = encodeURIComponent($("input-id").value.trim());
  const key = encodeURIComponent($("stream-key").value.trim());
  return `/ws/publish/${input}?key=${key}${takeover ? "&takeover=1" : ""}`;
}

async function goLive(takeover = false) {
  showError("");
  $("takeover").hidden = true;
  if (!$("input-id").value.trim() || !$("stream-key").value.trim()) {
    showError("Enter the input and its stream key · 请输入输入源和推流密钥");
    return;
  }
  state.mime = pickMime();
  if (!state.mime) {
    showError("This browser cannot record fragmented MP4 (MediaRecorder): please use a recent Chrome or Edge.");
    return;
  }
  $("mime").textContent = `Recording as ${state.mime}`;
  if (!state.stream) {
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 25, max: 30 } },
        audio: { echoCancellation: true, noiseSuppression: true },
      });
    } catch (error) {
      showError(`No camera or microphone: ${error.message} · 无法使用摄像头或麦克风`);
      return;
    }
    $("selfview").srcObject = state.stream;
  }
  state.wanted = true;
  state.published = false;
  state.attempt = 0;
  $("go-live").disabled = true;
  $("stop").disabled = false;
  connect(takeover);
}

function connect(takeover) {
  clearTimeout(state.retry);
  setTally("connecting");
  const path = publishPath(takeover);
  const socket = new WebSocket(wsUrl(path));
  state.socket = socket;
  let opened = false;
  let replaced = false;

  socket.onopen = () => {
    opened = true;
    state.published = true;
    showError("");
    setTally("standby");
    startRecorder(socket);
  };
  socket.onmessage = ({ data }) => {
    if (typeof data !== "string") return;
    const message = JSON.parse(data);
    if (message.type === "tally") {
      setTally(tallyMode(message), message.stage);
    } else if (message.type === "stats") {
      showStats(message, socket);
    } else if (message.type === "error") {
      if (message.code === "live.input_busy") replaced = true;
      showError(`${message.message} (${message.code})`);
    }
  };
  socket.onclose = async (event) => {
    stopRecorder();
    if (socket !== state.socket) return;
    state.socket = null;
    if (!state.wanted) return;
    let { code, reason } = event;
    if (!opened) {
      // A refused upgrade is a bare 1006 here: the same URL over HTTP says why.
      const refusal = await probe(path);
      if (refusal) ({ code, reason } = refusal);
    }
    if (!state.wanted) return;
    if (replaced) return stopped("Another publisher took over this input. · 此输入已被接管", true);
    if (code === 401 || code === 4401) return stopped(`Wrong stream key: ${reason}`);
    if (code === 404 || code === 4404) return stopped(`Unknown input: ${reason}`);
    if (code === 1007 || code === 1009) return stopped(`The server refused the media: ${reason}`);
    if ((code === 409 || code === 4409) && !state.published) {
      return stopped("This input already has a publisher. · 此输入已有推流", true);
    }
    // Dropped: come back, taking over from our own old connection if the server still has it.
    const base = BACKOFF[Math.min(state.attempt, BACKOFF.length - 1)];
    state.attempt += 1;
    setTally("connecting");
    showError(`Disconnected (${reason || code}); reconnecting… · 重新连接中`);
    state.retry = setTimeout(() => state.wanted && connect(state.published), base);
  };
}

function startRecorder(socket) {
  // A new recorder per connection: the server must get an init segment first.
  const recorder = new MediaRecorder(state.stream, {
    mimeType: state.mime,
    videoBitsPerSecond: 1_500_000,
    audioBitsPerSecond: 96_000,
    // A keyframe (and so a fragment: Chrome cuts its MP4 fragments at keyframes) every half
    // second, where supported: the server counts an input as stalled after 1 s without a
    // fragment, and a take lands on the next keyframe.
    videoKeyFrameIntervalDuration: 500,
  });
  recorder.ondataavailable = ({ data }) => {
    if (data.size && socket.readyState === WebSocket.OPEN) socket.send(data);
  };
  recorder.onerror = (event) => showError(`Recorder error: ${event.error?.message || "unknown"}`);
  recorder.start(TIMESLICE_MS);
  state.recorder = recorder;
  $("mime").textContent = `Recording as ${recorder.mimeType || state.mime}`;
}

function stopRecorder() {
  if (state.recorder && state.recorder.state !== "inactive") state.recorder.stop();
  state.recorder = null;
}

function showStats(stats, socket) {
  const kbps = Math.round((stats.bitrate || 0) / 1000);
  const age = stats.fragment_age === null ? "–" : `${stats.fragment_age.toFixed(1)} s`;
  let text = `${kbps} kbit/s · last fragment ${age} ago · ${stats.viewers} watching the stage`;
  if (socket.bufferedAmount > SLOW_UPLOAD_BYTES) text += " · ⚠ upload too slow · 上行带宽不足";
  $("stats").textContent = text;
}

// The end of a go-live: by the speaker, or by an error that retrying would not fix.
function stopped(error = "", offerTakeover = false) {
  state.wanted = false;
  clearTimeout(state.retry);
  stopRecorder();
  if (state.socket) {
    const socket = state.socket;
    state.socket = null;
    socket.close(1000);
  }
  setTally("off");
  $("stats").textContent = "";
  $("go-live").disabled = false;
  $("stop").disabled = true;
  $("takeover").hidden = !offerTakeover;
  showError(error);
}

function stop() {
  stopped();
  for (const track of state.stream?.getTracks() || []) track.stop();
  state.stream = null;
  $("selfview").srcObject = null;
}

$("connect").addEventListener("submit", (event) => {
  event.preventDefault();
  goLive(false);
});
$("takeover").addEventListener("click", () => goLive(true));
$("stop").addEventListener("click", stop);

// The return feed: the stage's program, through the same player as the viewer page.
const feed = new LivePlayer($("return-feed"), {
  onStatus: ({ state: s, text }) => { $("return-status").textContent = s === "playing" ? "" : text; },
});
$("return-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const stage = $("stage-id").value.trim();
  if (!stage) return;
  feed.play(returnPath(stage));
});

// The stage's program for this speaker: an invitation (?token=) if the page has one, else
// the speaker's own stream key, which the server accepts for the stage its input belongs
// to (so the return feed works on closed-door stages too).
function returnPath(stage) {
  const key = $("stream-key").value.trim();
  let query = "";
  if (token) query = `?token=${encodeURIComponent(token)}`;
  else if (key) query = `?key=${encodeURIComponent(key)}`;
  return `/ws/watch/${encodeURIComponent(stage)}${query}`;
}
