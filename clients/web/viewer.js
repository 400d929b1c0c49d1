// The attendee page: the event, its stages, the selected stage's schedule and live player.
import { el } from "./dom.js";
import { HlsPlayer, mseAvailable } from "./hls-player.js";
import { LivePlayer } from "./player.js";

const $ = (id) => document.getElementById(id);
const STATE_RANK = { live: 0, between: 1, upcoming: 2, idle: 3, ended: 4 };
const STATE_LABEL = {
  live: "LIVE · 直播中",
  between: "Break · 休息",
  upcoming: "Upcoming · 即将开始",
  idle: "Idle · 空闲",
  ended: "Ended · 已结束",
};
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;
const TZ_KEY = "forumcast.tz";
const PROTOCOL_KEY = "forumcast.protocol";
const NOW_POLL_MS = 5000; // HLS has no event channel: how often "now playing" is asked for
// The WebSocket stream needs Media Source Extensions; without them (iPhone Safari) it is HLS.
const WS_PLAYABLE = mseAvailable();

// An invitation (closed-door stages) comes as ?token=; keep it for this tab.
const params = new URLSearchParams(location.search);
let token = params.get("token") || sessionStorage.getItem("forumcast.token") || "";
if (params.get("token")) sessionStorage.setItem("forumcast.token", token);

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

const player = new LivePlayer($("video"), { onEvent: onLiveEvent, onStatus: showPlayerStatus });
const hlsPlayer = new HlsPlayer($("video"), { onStatus: showPlayerStatus });

// ---- helpers -------------------------------------------------------------------------

async function api(path) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  const body = await response.json();
  if (response.status === 401 && token) {
    // An expired or broken invitation: carry on as a public viewer.
    token = "";
    sessionStorage.removeItem("forumcast.token");
    return api(path);
  }
  if (!response.ok) throw new Error(body?.error?.message || response.statusText);
  return body;
}


// Chinese and English side by side.
function bilingual(title, tag = "span") {
  return el(tag, { class: "bilingual" },
    title.zh ? el("span", { lang: "zh", class: "zh" }, title.zh) : null,
    title.en ? el("span", { class: "en" }, title.en) : null);
}

function setBilingual(node, title) {
  node.querySelector(".zh").textContent = title.zh || "";
  node.querySelector(".en").textContent = title.en || "";
}

function zone() {
  return page.tzChoice === "local" ? LOCAL_ZONE : page.event?.timezone || LOCAL_ZONE;
}

function clock(iso, timeZone = zone()) {
  return new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone }).format(new Date(iso));
}

function dayKey(iso, timeZone = zone()) {
  return new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit", timeZone })
    .format(new Date(iso));
}

function dayLabel(key) {
  const date = new Date(`${key}T12:00:00Z`);
  return new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" })
    .format(date);
}

function span(session) {
  let text = `${clock(session.start)}–${clock(session.end)}`;
  if (dayKey(session.end) !== dayKey(session.start)) text += " (+1)";
  return text;
}

function speakers(list) {
  if (!list?.length) return null;
  return el("ul", { class: "speakers", "aria-label": "Speakers" },
    list.map((p) => el("li", {},
      p.name,
      p.affiliation ? el("span", { class: "muted" }, ` · ${p.affiliation}`) : null,
      p.remote ? el("span", { class: "remote", title: "speaking remotely" }, "🌐 remote · 远程") : null)));
}

function badge(state) {
  return el("span", { class: `badge badge-${state}` }, STATE_LABEL[state] || state);
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
  renderNow();
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
  renderSchedule();
}

function renderSchedule() {
  const days = [...new Set(page.sessions.map((s) => dayKey(s.start)))].sort();
  const today = page.event ? dayKey(page.event.now) : null;
  if (!days.includes(page.day)) page.day = days.includes(today) ? today : days[0] || null;

  const tabs = $("day-tabs");
  tabs.replaceChildren(...days.map((day) => el("button", {
    type: "button",
    role: "tab",
    id: `day-${day}`,
    "aria-selected": String(day === page.day),
    tabindex: day === page.day ? "0" : "-1",
    onclick: () => { page.day = day; renderSchedule(); },
    onkeydown: (event) => moveTab(event, days),
  }, day === today ? `Today · 今天 (${dayLabel(day)})` : dayLabel(day))));

  const list = $("sessions");
  if (page.day) list.setAttribute("aria-labelledby", `day-${page.day}`);
  const stage = page.stages.find((s) => s.id === page.stage);
  if (!page.sessions.length) {
    const text = stage && locked(stage) ? "🔒 The program of a closed-door stage needs an invitation." : "No sessions.";
    list.replaceChildren(el("li", { class: "muted" }, text));
    return;
  }
  const currentId = page.now?.session?.id ?? stage?.current?.id;
  list.replaceChildren(...page.sessions.filter((s) => dayKey(s.start) === page.day).map((s) => {
    // The venue's own wall clock too, when it differs from the zone shown ("14:30 in Lyon").
    const city = stage?.venue?.city || stage?.venue?.name?.en || "venue";
    const venueNote = s.venue_timezone !== zone()
      ? el("span", { class: "venue-time muted" },
        `${clock(s.venue_start, s.venue_timezone)}–${clock(s.venue_end, s.venue_timezone)} ${city} time`
        + ` (${s.venue_timezone})`)
      : null;
    return el("li", { class: `session${s.id === currentId ? " current" : ""}`, "data-session": s.id },
      el("time", { class: "when", datetime: s.start }, span(s)),
      el("div", { class: "what" },
        bilingual(s.title, "strong"),
        s.id === currentId ? el("span", { class: "badge badge-live" }, "Now · 正在进行") : null,
        s.do_not_stream ? el("span", { class: "badge" }, "Not streamed · 不直播") : null,
        venueNote,
        speakers(s.speakers)));
  }));
}

function moveTab(event, days) {
  const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
  if (!step) return;
  const index = (days.indexOf(page.day) + step + days.length) % days.length;
  page.day = days[index];
  renderSchedule();
  $(`day-${page.day}`).focus();
}

// ---- live events and now-playing -----------------------------------------------------

function onLiveEvent(event) {
  if (event.type === "now" && event.stage === page.stage) {
    page.now = event;
    renderNow();
    renderSchedule();
  } else if (event.type === "viewers") {
    $("viewers").textContent = `👁 ${event.count} watching · 人在看`;
  }
}

// What the picture is: the stage's slate (stand-by between sessions or during a technical
// break) or a source carrying the session. Only the watch socket's "now" event knows.
function programOf(now) {
  if (!now?.program) return null;
  return { ...now.program, slate: Boolean(now.slate ?? now.program.slate) };
}

// Why the slate is on: between sessions, a session that is not streamed, a technical break.
function standbyNote(current, program) {
  const note = (...parts) => el("p", { class: "standby-note" }, ...parts);
  if (!current) return note("Between sessions · 会间休息");
  const title = bilingual(current.title, "strong");
  if (current.do_not_stream) return note(title, " is not streamed · 本场不直播");
  if (program.reason === "failover") return note("Technical break: ", title, " continues shortly · 技术中断，请稍候");
  return note("Please stand by: ", title, " · 请稍候");
}

function renderNow() {
  const box = $("now-playing");
  const stage = page.stages.find((s) => s.id === page.stage);
  if (!stage) {
    box.replaceChildren();
    for (const key of ["source", "slate", "mode", "reason"]) delete box.dataset[key];
    return;
  }
  const state = page.now?.state ?? stage.state;
  const current = page.now ? page.now.session : stage.current;
  const next = page.now ? page.now.next : stage.next;
  const program = programOf(page.now);
  // Machine-readable too (tests, styling): what is on air and why.
  box.dataset.source = program?.source ?? "";
  box.dataset.slate = String(program?.slate ?? false);
  box.dataset.mode = program?.mode ?? "";
  box.dataset.reason = program?.reason ?? "";
  const nextLine = next ? el("p", { class: "next" }, "Next · 下一场: ", bilingual(next.title), ` ${span(next)}`) : null;
  if (program?.slate) {
    // Nobody is on air: say so, never imply that the session's speakers are live.
    box.replaceChildren(...[
      el("p", { class: "now-head" }, el("span", { class: "badge badge-standby" }, "Stand-by · 稍候")),
      standbyNote(current, program),
      nextLine].filter(Boolean));
    return;
  }
  box.replaceChildren(...[
    el("p", { class: "now-head" }, badge(state), current ? " Now playing · 正在播放" : " Nothing on now · 暂无节目"),
    current ? el("div", { class: "now-session" },
      bilingual(current.title, "h3"),
      el("p", { class: "muted" }, span(current)),
      speakers(current.speakers)) : null,
    program?.reason === "failover"
      ? el("p", { class: "muted backup-note" }, "On the backup feed · 备用信号") : null,
    nextLine].filter(Boolean)); // replaceChildren would print a null as the text "null"
}

function showPlayerStatus({ state, text }) {
  const status = $("player-status");
  status.textContent = state === "playing" ? "" : text;
  status.dataset.state = state;
}

// ---- controls ------------------------------------------------------------------------

$("watch").addEventListener("click", watch);
$("sound").addEventListener("click", () => {
  const video = $("video");
  video.muted = !video.muted;
  if (!video.muted) video.play().catch(() => {});
  $("sound").setAttribute("aria-pressed", String(!video.muted));
  $("sound").textContent = video.muted ? "🔈 Sound on · 开启声音" : "🔇 Mute · 静音";
});
$("video").addEventListener("volumechange", () => {
  const muted = $("video").muted;
  $("sound").setAttribute("aria-pressed", String(!muted));
  $("sound").textContent = muted ? "🔈 Sound on · 开启声音" : "🔇 Mute · 静音";
});

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
    renderNow();
    renderSchedule();
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
  setInterval(() => loadStages().then(() => renderNow()).catch(() => {}), 30000);
}

start();
