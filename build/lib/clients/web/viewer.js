// The attendee page: the event, its stages and the live player (WebSocket or HLS), with
// the invitation token. The schedule and the now-playing box are viewer-schedule.js's.
import { $, el, bilingual, soundButton, takeFromUrl, api as request } from "./common.js";
import { HlsPlayer, mseAvailable } from "./hls-player.js";
import { LivePlayer } from "./player.js";
import { LOCAL_ZONE, Schedule, badge, dayLabel } from "./viewer-schedule.js";

const STATE_RANK = { live: 0, between: 1, upcoming: 2, idle: 3, ended: 4 };
const TZ_KEY = "forumcast.tz";
const PROTOCOL_KEY = "forumcast.protocol";
const NOW_POLL_MS = 5000; // HLS has no event channel: how often "now playing" is asked for
// The WebSocket stream needs Media Source Extensions; without them (iPhone Safari) it is HLS.
const WS_PLAYABLE = mseAvailable();

// An invitation (closed-door stages) comes as ?token=: out of the address bar at once, kept
// for this tab.
const invitation = takeFromUrl("token").token;
let token = invitation || sessionStorage.getItem("forumcast.token") || "";
if (invitation) sessionStorage.setItem("forumcast.token", token);

const page = {
  event: null,
  stages: [],
  stage: null, // selected stage id
  sessions: [],
  day: null, // selected day (YYYY-MM-DD in the shown zone)
  now: null, // the last "now" event of the selected stage
  tzChoice: localStorage.getItem(TZ_KEY) === "local" ? "local" : "event",
  // "ws": the WebSocket stream (lowest delay); "hls": Low-Latency HLS (native or hls.js).
  protocol: WS_PLAYABLE && localStorage.getItem(PROTOCOL_KEY) !== "hls" ? "ws" : "hls",
  nowTimer: null, // polls "now playing" while HLS plays
};

const schedule = new Schedule(page, { locked });
const player = new LivePlayer($("video"), { onEvent: onLiveEvent, onStatus: showPlayerStatus });
const hlsPlayer = new HlsPlayer($("video"), { onStatus: showPlayerStatus });

// ---- helpers -------------------------------------------------------------------------

async function api(path) {
  try {
    return await request(path, { token });
  } catch (error) {
    if (error.status !== 401 || !token) throw error;
    // An expired or broken invitation: carry on as a public viewer.
    token = "";
    sessionStorage.removeItem("forumcast.token");
    return api(path);
  }
}

function setBilingual(node, title) {
  node.querySelector(".zh").textContent = title.zh || "";
  node.querySelector(".en").textContent = title.en || "";
}

// ---- event and stages ----------------------------------------------------------------

async function loadEvent() {
  page.event = await api("/api/v1/event");
  const title = page.event.title;
  setBilingual($("event-title"), title);
  document.title = `${title.en || title.zh} · forumcast`;
  showZones();
}

function showZones() {
  $("tz-event").textContent = `(${page.event.timezone})`;
  $("tz-local").textContent = `(${LOCAL_ZONE})`;
  for (const input of document.querySelectorAll("input[name=tz]")) input.checked = input.value === page.tzChoice;
  const days = page.event.days;
  $("event-dates").textContent = days.length
    ? `${dayLabel(days[0])} – ${dayLabel(days[days.length - 1])} · ${page.event.timezone}`
    : "";
}

async function loadStages() {
  const body = await api("/api/v1/stages");
  page.stages = body.stages
    .map((stage, index) => ({ stage, index }))
    .sort((a, b) => (STATE_RANK[a.stage.state] ?? 9) - (STATE_RANK[b.stage.state] ?? 9) || a.index - b.index)
    .map((x) => x.stage);
  renderStages();
}

function locked(stage) {
  return stage.closed && !token;
}

function renderStages() {
  const list = $("stage-list");
  list.replaceChildren(...page.stages.map((stage) => {
    const current = stage.current;
    return el("li", {},
      el("button", {
        type: "button",
        class: "stage",
        "data-stage": stage.id,
        "data-state": stage.state,
        "aria-pressed": String(stage.id === page.stage),
        onclick: () => selectStage(stage.id),
      },
      el("span", { class: "stage-name" },
        stage.closed ? el("span", { class: "lock", "aria-hidden": "true" }, "🔒 ") : null,
        stage.closed ? el("span", { class: "sr-only" }, "Closed-door: ") : null,
        bilingual(stage.title)),
      el("span", { class: "stage-meta" },
        badge(stage.state),
        current ? el("span", { class: "muted" }, ` ${current.title.en || current.title.zh}`) : null)));
  }));
}

// ---- selecting a stage ---------------------------------------------------------------

// Select a stage: show its schedule and now-playing, and (with `play`) start watching it.
async function selectStage(id, play = true) {
  const stage = page.stages.find((s) => s.id === id);
  if (!stage) return;
  page.stage = id;
  page.now = null;
  page.day = null;
  if (location.hash !== `#${id}`) history.replaceState(null, "", `#${id}`);
  for (const button of document.querySelectorAll("#stage-list button")) {
    button.setAttribute("aria-pressed", String(button.dataset.stage === id));
  }
  setBilingual($("watch-heading"), stage.title);
  $("viewers").textContent = "";
  schedule.renderNow();
  stopPlaying();
  $("watch").hidden = true;
  if (locked(stage)) {
    showPlayerStatus({ state: "locked", text: "🔒 Closed-door: invitation needed · 闭门会议，需要邀请" });
  } else if (play) {
    watch();
  } else {
    showPlayerStatus({ state: "stopped", text: "" });
    $("watch").hidden = false;
  }
  await loadSessions();
}

function watch() {
  $("watch").hidden = true;
  stopPlaying();
  const stage = encodeURIComponent(page.stage);
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  if (page.protocol === "hls") {
    // Every URL below the multivariant playlist carries its query (the token) on its own.
    hlsPlayer.play(`/live/${stage}/index.m3u8${query}`);
    pollNow();
  } else {
    player.play(`/ws/watch/${stage}${query}`);
  }
}

function stopPlaying() {
  player.stop();
  hlsPlayer.stop();
  clearTimeout(page.nowTimer);
  page.nowTimer = null;
}

// What the WebSocket's "now" events say, for HLS: the stage document has the same facts.
async function pollNow() {
  const id = page.stage;
  clearTimeout(page.nowTimer);
  page.nowTimer = setTimeout(pollNow, NOW_POLL_MS);
  try {
    const stage = await api(`/api/v1/stages/${encodeURIComponent(id)}`);
    if (id !== page.stage || page.protocol !== "hls") return;
    onLiveEvent({
      type: "now",
      stage: id,
      state: stage.state,
      session: stage.current ?? null,
      next: stage.next ?? null,
      program: stage.program ?? null,
      slate: stage.program?.slate ?? false,
    });
  } catch {
    // The next poll will tell.
  }
}

function showProtocol() {
  for (const input of document.querySelectorAll("input[name=protocol]")) {
    input.checked = input.value === page.protocol;
    if (input.value === "ws") input.disabled = !WS_PLAYABLE;
  }
  $("protocol-note").textContent = WS_PLAYABLE ? "" : "This browser plays HLS only · 此浏览器仅支持 HLS";
}

async function loadSessions() {
  const id = page.stage;
  const body = await api(`/api/v1/sessions?stage=${encodeURIComponent(id)}`);
  if (id !== page.stage) return; // another stage was chosen meanwhile
  page.sessions = body.sessions;
  schedule.render();
}

// ---- live events and now-playing -----------------------------------------------------

function onLiveEvent(event) {
  if (event.type === "now" && event.stage === page.stage) {
    page.now = event;
    schedule.renderNow();
    schedule.render();
  } else if (event.type === "viewers") {
    $("viewers").textContent = `👁 ${event.count} watching · 人在看`;
  }
}

function showPlayerStatus({ state, text }) {
  const status = $("player-status");
  status.textContent = state === "playing" ? "" : text;
  status.dataset.state = state;
}

// ---- controls ------------------------------------------------------------------------

$("watch").addEventListener("click", watch);
soundButton($("sound"), $("video"));

for (const input of document.querySelectorAll("input[name=protocol]")) {
  input.addEventListener("change", () => {
    if (!input.checked || input.value === page.protocol) return;
    page.protocol = input.value;
    localStorage.setItem(PROTOCOL_KEY, page.protocol);
    // Go on watching the same stage the other way (unless it is locked or not started).
    const stage = page.stages.find((s) => s.id === page.stage);
    if (stage && !locked(stage) && $("watch").hidden) watch();
  });
}
showProtocol();

for (const input of document.querySelectorAll("input[name=tz]")) {
  input.addEventListener("change", () => {
    page.tzChoice = input.value;
    localStorage.setItem(TZ_KEY, page.tzChoice);
    showZones();
    renderStages();
    schedule.renderNow();
    schedule.render();
  });
}

window.addEventListener("hashchange", () => {
  const id = decodeURIComponent(location.hash.slice(1));
  if (id && id !== page.stage) selectStage(id);
});

// ---- start ---------------------------------------------------------------------------

async function start() {
  try {
    await loadEvent();
    await loadStages();
  } catch (error) {
    $("player-status").textContent = `Could not load the event: ${error.message}`;
    return;
  }
  const wanted = decodeURIComponent(location.hash.slice(1));
  const first = page.stages.find((s) => s.id === wanted) || page.stages.find((s) => s.state === "live" && !locked(s));
  if (first) await selectStage(first.id, first.id === wanted);
  // Keep the stage states fresh.
  setInterval(() => loadStages().then(() => schedule.renderNow()).catch(() => {}), 30000);
}

start();
