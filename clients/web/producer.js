// The producer console (/producer): one stage at a time — its program, a muted preview of
// each of its inputs with health and tally, Take / Auto / Delay, and the sessions to come.
//
// State comes from polling GET /api/v1/inputs and GET /api/v1/stages/{stage} every second,
// and from the `now` / `viewers` events of the program's watch socket; what the producer's
// own actions return is shown at once. The token is checked by the server only: the page
// decodes its payload for display (role, scope, expiry) and to preselect the stage. Every
// request goes through producer-api.js.
import { $, el, bilingual } from "./common.js";
import { LivePlayer } from "./player.js";
import { ApiError, ProducerApi } from "./producer-api.js";

const TOKEN_KEY = "forumcast.producer.token";
const POLL_MS = 1000;

const MODE_LABEL = { auto: "AUTO · 自动", manual: "MANUAL · 手动" };
const REASON_LABEL = {
  schedule: "schedule · 按日程",
  manual: "manual take · 手动切换",
  failover: "failover · 故障切换",
  failback: "failback · 恢复切回",
};
const TALLY_LABEL = {
  "on-air": "ON AIR · 播出中",
  preview: "PREVIEW · 预监中",
  off: "off · 未播出",
};

const server = new ProducerApi();

const page = {
  event: null,
  stages: [],
  stage: null, // the selected stage id
  stageBody: null, // its last GET /api/v1/stages/{stage}
  program: null, // what is on air: the last of poll, now event or an action's answer
  programSeq: 0, // bumped by every now event and action answer: older polls do not undo them
  cards: new Map(), // input id -> {card, player, input}
  programPlayer: null,
  timer: null,
  polling: false,
  pollError: false, // the error shown came from polling (cleared when polling works again)
  busy: false, // an action is in flight
};

// ---- helpers -------------------------------------------------------------------------

function showError(error, { fromPoll = false } = {}) {
  if (!error) {
    $("error").textContent = "";
    page.pollError = false;
    return;
  }
  const where = error.status ? ` (HTTP ${error.status}${error.code ? ` ${error.code}` : ""})` : "";
  const text = `${error.message}${where}`;
  if ($("error").textContent !== text) $("error").textContent = text;
  page.pollError = fromPoll;
}

function announce(text) {
  $("status").textContent = text;
}

// Set a node's text only when it changes, so live regions speak only about changes.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function titleText(title) {
  return [title?.en, title?.zh].filter(Boolean).join(" · ");
}

function venueZone() {
  return page.stageBody?.venue?.timezone || page.event?.timezone || undefined;
}

function clock(iso, { seconds = false } = {}) {
  return new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined, timeZone: venueZone(),
  }).format(new Date(iso));
}

function dayLabel(iso) {
  return new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: venueZone() })
    .format(new Date(iso));
}

function inputTitle(id) {
  const card = page.cards.get(id);
  return card?.input?.title || id;
}

function sourceLabel(source) {
  if (!source) return "—";
  if (source === "slate") return "Slate · 待机画面";
  const title = inputTitle(source);
  return title && title !== source ? `${source} · ${title}` : source;
}

// ---- login ---------------------------------------------------------------------------

async function login(token) {
  showError(null);
  if (!server.signIn(token)) return;
  $("login-button").disabled = true;
  try {
    await server.inputs(); // the server's verdict on the token (401 / 403)
    [page.event, page.stages] = await Promise.all([server.event(), server.stages()]);
  } catch (error) {
    showError(error);
    if (error.status === 401 || error.status === 403) logout({ keepError: true });
    return;
  } finally {
    $("login-button").disabled = false;
  }
  sessionStorage.setItem(TOKEN_KEY, server.token);
  $("token").value = "";
  $("login-view").hidden = true;
  $("console").hidden = false;
  $("session-bar").hidden = false;
  $("event-title").textContent = titleText(page.event.title);
  showWho();
  renderStagePicker();
  const scope = server.claims?.scope;
  const wanted = decodeURIComponent(location.hash.slice(1));
  const choices = producible().map((s) => s.id);
  const live = producible().find((s) => s.state === "live")?.id;
  const first = [wanted, scope, live, choices[0]].find((id) => id && id !== "*" && choices.includes(id));
  if (first) await selectStage(first);
  else showError(new ApiError(0, "", "this token covers no stage · 此令牌没有可管理的会场"));
}

function logout({ keepError = false } = {}) {
  stopStage();
  clearInterval(page.timer);
  page.timer = null;
  server.signOut();
  page.stage = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("console").hidden = true;
  $("session-bar").hidden = true;
  $("login-view").hidden = false;
  if (!keepError) showError(null);
  $("token").focus();
}

function showWho() {
  const claims = server.claims;
  if (!claims) {
    $("who").textContent = "";
    return;
  }
  const scope = claims.scope === "*" ? "every stage · 全部会场" : `stage ${claims.scope} · 会场`;
  const expires = claims.exp
    ? ` · expires ${new Intl.DateTimeFormat("en-GB", { dateStyle: "short", timeStyle: "short" })
      .format(new Date(claims.exp * 1000))} · 到期`
    : "";
  $("who").textContent = `${claims.sub ? `${claims.sub}: ` : ""}${claims.role} · ${scope}${expires}`;
}

// The stages this token produces (by its decoded scope; the server has the last word).
function producible() {
  const scope = server.claims?.scope;
  if (!scope || scope === "*") return page.stages;
  const mine = page.stages.filter((s) => s.id === scope);
  return mine.length ? mine : page.stages;
}

function renderStagePicker() {
  const select = $("stage");
  select.replaceChildren(...producible().map((stage) =>
    el("option", { value: stage.id }, `${titleText(stage.title)} (${stage.id})${stage.closed ? " 🔒" : ""}`)));
  if (page.stage) select.value = page.stage;
}

// ---- one stage -----------------------------------------------------------------------

function stopStage() {
  page.programPlayer?.destroy();
  page.programPlayer = null;
  for (const { player } of page.cards.values()) player.destroy();
  page.cards.clear();
  $("inputs").replaceChildren();
  page.stageBody = null;
  page.program = null;
  page.programSeq += 1;
}

async function selectStage(id) {
  stopStage();
  page.stage = id;
  $("stage").value = id;
  if (location.hash !== `#${id}`) history.replaceState(null, "", `${location.pathname}#${id}`);
  const stage = page.stages.find((s) => s.id === id);
  $("stage-title").textContent = stage ? `— ${titleText(stage.title)}` : "";
  setText($("viewers"), "");
  renderProgram();
  page.programPlayer = new LivePlayer($("program-video"), {
    onEvent: onProgramEvent,
    onStatus: (status) => playerStatus($("program-player-status"), status),
  });
  page.programPlayer.play(server.programUrl(id));
  await refresh();
  if (!page.timer) page.timer = setInterval(refresh, POLL_MS);
}

function playerStatus(node, { state, text }) {
  node.dataset.state = state;
  node.textContent = state === "playing" ? "" : state === "locked" ? "not allowed with this token · 无权限" : text;
}

// One poll: the stage's inputs and the stage itself (program, sessions, delay).
async function refresh() {
  if (page.polling || !page.stage || !server.token) return;
  page.polling = true;
  const stage = page.stage;
  const seq = page.programSeq;
  try {
    const [inputs, body] = await Promise.all([server.inputs(), server.stage(stage)]);
    if (stage !== page.stage) return;
    page.stageBody = body;
    if (body.program && seq === page.programSeq) page.program = body.program;
    renderInputs(inputs.inputs.filter((input) => input.stage === stage));
    renderProgram();
    renderControls();
    renderUpcoming();
    if (page.pollError) showError(null);
  } catch (error) {
    if (stage !== page.stage) return;
    if (error.status === 401) {
      logout({ keepError: true }); // expired or revoked: back to the login form
      showError(error);
    } else if (!$("error").textContent || page.pollError) {
      showError(error, { fromPoll: true });
    }
  } finally {
    page.polling = false;
  }
}

function onProgramEvent(event) {
  if (event.stage && event.stage !== page.stage) return;
  if (event.type === "now" && event.program) {
    const before = page.program?.source;
    page.program = { ...(page.program || {}), ...event.program, pending: null };
    page.programSeq += 1;
    renderProgram();
    renderInputs();
    if (before && before !== event.program.source) {
      const reason = REASON_LABEL[event.program.reason] || event.program.reason || "";
      announce(`On air · 已切换: ${sourceLabel(event.program.source)}${reason ? ` (${reason})` : ""}`);
    }
    refresh();
  } else if (event.type === "viewers") {
    showViewers(event.count);
  }
}

function showViewers(count) {
  if (typeof count === "number") setText($("viewers"), `👁 ${count} watching · 人在看`);
}

// ---- program -------------------------------------------------------------------------

function renderProgram() {
  const program = page.program;
  const source = $("program-source");
  source.dataset.source = program?.source || "";
  source.dataset.slate = String(Boolean(program?.slate));
  setText(source, program ? sourceLabel(program.source) : "—");
  const mode = $("program-mode");
  mode.dataset.mode = program?.mode || "";
  setText(mode, program ? MODE_LABEL[program.mode] || program.mode : "—");
  const reason = $("program-reason");
  reason.dataset.reason = program?.reason || "";
  setText(reason, program ? REASON_LABEL[program.reason] || program.reason : "—");
  const since = $("program-since");
  if (program?.since) {
    since.setAttribute("datetime", program.since);
    setText(since, clock(program.since, { seconds: true }));
  } else {
    since.removeAttribute("datetime");
    setText(since, "—");
  }
  const sessionId = program?.session;
  const session = sessionId ? page.stageBody?.sessions?.find((s) => s.id === sessionId) : null;
  setText($("program-session"), !program ? "—" : session ? titleText(session.title) : sessionId || "between sessions · 场间");
  const pending = program?.pending;
  $("program-pending").hidden = !pending;
  setText($("program-pending"), pending
    ? `⏳ Waiting for a keyframe of ${sourceLabel(pending.source)} · 等待关键帧`
    : "");
  if (typeof program?.viewers === "number") showViewers(program.viewers);
  $("program-state").dataset.source = program?.source || "";
}

function renderControls() {
  const auto = $("auto");
  auto.setAttribute("aria-pressed", String(page.program?.mode === "auto"));
  const delay = page.stageBody?.delay_minutes ?? 0;
  setText($("delay-total"), delay ? `Delayed ${delay > 0 ? "+" : ""}${delay} min · 已延时` : "On time · 准点");
  for (const button of document.querySelectorAll("#console button.take, #auto, #take-slate, #delay-plus, #delay-minus")) {
    button.disabled = page.busy;
  }
}

// Run one producer action: show its answer at once, or the server's refusal.
async function act(label, action, body) {
  if (page.busy) return;
  page.busy = true;
  renderControls();
  showError(null);
  const stage = page.stage;
  try {
    const answer = await server.act(stage, action, body);
    if (stage !== page.stage) return;
    if (answer?.program) {
      page.program = answer.program;
      page.programSeq += 1;
    }
    if (answer?.sessions) page.stageBody = { ...page.stageBody, ...answer, program: page.program };
    announce(`${label} ✓`);
  } catch (error) {
    showError(error);
    announce(`${label} ✗`);
  } finally {
    page.busy = false;
    renderProgram();
    renderInputs();
    renderControls();
    renderUpcoming();
  }
}

function take(input) {
  const body = { input };
  if ($("cut-cached").checked) body.cut = "cached";
  return act(`Take ${sourceLabel(input)} · 切换`, "take", body);
}

// ---- inputs --------------------------------------------------------------------------

function makeCard(input) {
  const id = input.id;
  const video = el("video", { muted: true, playsinline: true, autoplay: true, "aria-label": `Preview of ${input.title || id} (muted)` });
  video.muted = true;
  const status = el("p", { class: "player-status" });
  const card = el("article", { class: "input-card", "data-input": id, "aria-labelledby": `input-${id}-title` },
    el("header", { class: "input-head" },
      el("h3", { id: `input-${id}-title` }, input.title || id, " ", el("span", { class: "muted input-id" }, id)),
      el("span", { class: "badges" },
        el("span", { class: "badge badge-health" }),
        el("span", { class: "badge badge-onair", hidden: true }, "ON AIR · 播出"),
        el("span", { class: "badge badge-preview", hidden: true }, "PREVIEW · 预监"))),
    el("div", { class: "player preview" }, video, status),
    el("dl", { class: "health" },
      field("Bitrate · 码率", "bitrate"),
      field("Last fragment · 最近分片", "age"),
      field("Picture · 画面", "resolution"),
      field("Codecs · 编码", "codecs"),
      field("GOP · 关键帧间隔", "gop"),
      field("Publisher · 推流", "publisher")),
    el("p", { class: "tally-line" }, "Tally · 提示灯: ", el("span", { class: "tally-state", "data-state": "off" }, TALLY_LABEL.off)),
    el("button", { type: "button", class: "take", onclick: () => take(id) },
      "▶ Take · 切换", el("span", { class: "sr-only" }, ` ${input.title || id}`)));
  const player = new LivePlayer(video, { onStatus: (s) => playerStatus(status, s) });
  player.play(server.inputUrl(id));
  return { card, player, input };
}

function field(label, name) {
  return el("div", {}, el("dt", {}, label), el("dd", { class: name }, "—"));
}

// Update the cards from the inputs' health (or, with no list, from what is on air now).
function renderInputs(list) {
  const grid = $("inputs");
  if (list) {
    const ids = new Set(list.map((input) => input.id));
    for (const [id, entry] of page.cards) {
      if (!ids.has(id)) {
        entry.player.destroy();
        entry.card.remove();
        page.cards.delete(id);
      }
    }
    for (const input of list) {
      let entry = page.cards.get(input.id);
      if (!entry) {
        entry = makeCard(input);
        page.cards.set(input.id, entry);
      }
      entry.input = input;
    }
    const order = list.map((input) => page.cards.get(input.id).card);
    if (order.some((card, i) => grid.children[i] !== card) || grid.children.length !== order.length) {
      grid.replaceChildren(...order);
    }
    if (!list.length) grid.replaceChildren(el("p", { class: "muted" }, "No inputs on this stage · 此会场没有输入源"));
  }
  for (const entry of page.cards.values()) updateCard(entry);
}

function updateCard({ card, input }) {
  const q = (selector) => card.querySelector(selector);
  const live = input.state === "live";
  const up = input.up ?? live;
  const health = up ? "up" : live ? "stalled" : "offline";
  card.dataset.state = input.state;
  card.dataset.health = health;
  const badge = q(".badge-health");
  badge.className = `badge badge-health badge-${health}`;
  setText(badge, { up: "UP · 在线", stalled: "STALLED · 卡顿", offline: "OFFLINE · 离线" }[health]);

  const onAir = input.on_air ?? page.program?.source === input.id;
  const preview = Boolean(input.preview);
  card.dataset.onAir = String(onAir);
  card.dataset.pending = String(page.program?.pending?.source === input.id);
  q(".badge-onair").hidden = !onAir;
  q(".badge-preview").hidden = !preview;
  const tally = q(".tally-state");
  const tallyState = onAir ? "on-air" : preview ? "preview" : "off";
  tally.dataset.state = tallyState;
  setText(tally, TALLY_LABEL[tallyState]);

  setText(q(".bitrate"), live && input.bitrate != null ? `${Math.round(input.bitrate / 1000)} kbit/s` : "—");
  setText(q(".age"), input.fragment_age != null ? `${input.fragment_age.toFixed(1)} s ago · 秒前` : "—");
  const video = (input.tracks || []).find((t) => t.kind === "video");
  const audio = (input.tracks || []).find((t) => t.kind === "audio");
  setText(q(".resolution"), video?.width ? `${video.width}×${video.height}` : "—");
  const codecs = [video?.codec, audio ? `${audio.codec}${audio.sample_rate ? ` ${audio.sample_rate / 1000} kHz` : ""}` : null]
    .filter(Boolean).join(" · ");
  setText(q(".codecs"), codecs || "—");
  setText(q(".gop"), input.gop_seconds != null ? `${input.gop_seconds.toFixed(2)} s` : "—");
  const pub = input.publisher;
  const previews = input.preview_viewers ? ` · ${input.preview_viewers} previewing · 人预监` : "";
  setText(q(".publisher"), pub ? `${pub.kind}${pub.remote ? ` from ${pub.remote}` : ""}, ${Math.round(pub.seconds)} s${previews}` : `none · 无${previews}`);
}

// ---- sessions ------------------------------------------------------------------------

// The running session (if any) and those after it, as the server's scheduler sees them.
function upcomingSessions() {
  const body = page.stageBody;
  const sessions = body?.sessions || [];
  const from = body?.current || body?.next;
  if (!from) return [];
  const start = Date.parse(from.start);
  return sessions.filter((s) => Date.parse(s.start) >= start);
}

function renderUpcoming() {
  const list = $("upcoming");
  const sessions = upcomingSessions();
  const currentId = page.stageBody?.current?.id;
  if (!sessions.length) {
    const text = page.stageBody ? "No more sessions · 没有后续场次" : "";
    if (list.dataset.key !== text) {
      list.dataset.key = text;
      list.replaceChildren(el("li", { class: "muted" }, text));
    }
    return;
  }
  // Re-render only when something shown changed (keeps focus and screen readers calm).
  const key = JSON.stringify([currentId, page.program?.session, sessions.map((s) => [s.id, s.start, s.end, s.input, s.backup_input])]);
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  let lastDay = null;
  list.replaceChildren(...sessions.map((s) => {
    const day = dayLabel(s.start);
    const dayNote = day !== lastDay ? el("span", { class: "day muted" }, day) : null;
    lastDay = day;
    const feed = s.input
      ? el("span", { class: "feed muted" }, `Feed · 信号: ${s.input}${s.backup_input ? ` (backup · 备份 ${s.backup_input})` : ""}`)
      : null;
    return el("li", { class: `session${s.id === currentId ? " current" : ""}`, "data-session": s.id },
      el("span", { class: "when" },
        dayNote,
        el("time", { class: "start", datetime: s.start }, clock(s.start)),
        "–",
        el("time", { class: "end", datetime: s.end }, clock(s.end))),
      el("div", { class: "what" },
        bilingual(s.title, "strong"),
        s.id === currentId ? el("span", { class: "badge badge-live" }, "Now · 正在进行") : null,
        feed));
  }));
}

// ---- controls ------------------------------------------------------------------------

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  login($("token").value);
});
$("logout").addEventListener("click", () => logout());
$("stage").addEventListener("change", () => selectStage($("stage").value));
$("auto").addEventListener("click", () => act("Auto · 自动", "auto", {}));
$("take-slate").addEventListener("click", () => take("slate"));
$("delay-plus").addEventListener("click", () => act("Delay +5 min · 推迟", "delay", { minutes: 5 }));
$("delay-minus").addEventListener("click", () => act("Delay −5 min · 提前", "delay", { minutes: -5 }));

function soundLabel() {
  const muted = $("program-video").muted;
  $("program-sound").setAttribute("aria-pressed", String(!muted));
  $("program-sound").textContent = muted ? "🔈 Sound on · 开启声音" : "🔇 Mute · 静音";
}
$("program-sound").addEventListener("click", () => {
  const video = $("program-video");
  video.muted = !video.muted;
  if (!video.muted) video.play().catch(() => {});
  soundLabel();
});
$("program-video").addEventListener("volumechange", soundLabel);

window.addEventListener("hashchange", () => {
  const id = decodeURIComponent(location.hash.slice(1));
  if (server.token && id && id !== page.stage && producible().some((s) => s.id === id)) selectStage(id);
});

// ---- start ---------------------------------------------------------------------------

// A token in the URL is taken and removed from it (history, bookmarks, screen shares).
const params = new URLSearchParams(location.search);
const fromUrl = params.get("token");
if (fromUrl) {
  params.delete("token");
  const query = params.toString();
  history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
}
const saved = fromUrl || sessionStorage.getItem(TOKEN_KEY) || "";
if (saved) login(saved);
else $("token").focus();
