// The producer console (/producer): one stage at a time — its program, a muted preview of
// each of its inputs with health and tally, Take / Auto / Delay, and the sessions to come.
//
// State comes from polling GET /api/v1/inputs and GET /api/v1/stages/{stage} every second,
// and from the `now` / `viewers` events of the program's watch socket; what the producer's
// own actions return is shown at once. The token is checked by the server only: the page
// decodes its payload for display (role, scope, expiry) and to preselect the stage. Every
// request goes through producer-api.js; the input cards are producer-inputs.js's and the
// upcoming sessions producer-upcoming.js's.
import { $, el, setText, soundButton, takeFromUrl } from "./common.js";
import { LivePlayer } from "./player.js";
import { ApiError, ProducerApi } from "./producer-api.js";
import { InputCards } from "./producer-inputs.js";
import { clock, renderUpcomingList } from "./producer-upcoming.js";

const TOKEN_KEY = "forumcast.producer.token";
const POLL_MS = 1000;

const MODE_LABEL = { auto: "AUTO · 自动", manual: "MANUAL · 手动" };
const REASON_LABEL = {
  schedule: "schedule · 按日程",
  manual: "manual take · 手动切换",
  failover: "failover · 故障切换",
  failback: "failback · 恢复切回",
};

const server = new ProducerApi();
const inputs = new InputCards($("inputs"), server, { take, playerStatus });

const page = {
  event: null,
  stages: [],
  stage: null, // the selected stage id
  stageBody: null, // its last GET /api/v1/stages/{stage}
  program: null, // what is on air: the last of poll, now event or an action's answer
  programSeq: 0, // bumped by every now event and action answer: older polls do not undo them
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

function titleText(title) {
  return [title?.en, title?.zh].filter(Boolean).join(" · ");
}

function venueZone() {
  return page.stageBody?.venue?.timezone || page.event?.timezone || undefined;
}

function sourceLabel(source) {
  if (!source) return "—";
  if (source === "slate") return "Slate · 待机画面";
  const title = inputs.title(source);
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
  inputs.clear();
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
    const [list, body] = await Promise.all([server.inputs(), server.stage(stage)]);
    if (stage !== page.stage) return;
    page.stageBody = body;
    if (body.program && seq === page.programSeq) page.program = body.program;
    renderInputs(list.inputs.filter((input) => input.stage === stage));
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
    setText(since, clock(program.since, venueZone(), { seconds: true }));
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
  // With several instances: which one makes this stage's program (a takeover shows here)
  // (the API's answer says; a `now` event leaves the last answer shown)
  if (program && "leader" in program) {
    $("program-leader-row").hidden = false;
    setText($("program-leader"), program.leader
      ? `${program.leader.instance} · term ${program.leader.epoch}`
      : "none — taking over · 正在接管");
  }
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

// ---- inputs and upcoming sessions ----------------------------------------------------

// Update the input cards from the inputs' health (or, with no list, from what is on air now).
function renderInputs(list) {
  inputs.render(list, page.program);
}

function renderUpcoming() {
  renderUpcomingList($("upcoming"), page.stageBody, page.program?.session, venueZone());
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

soundButton($("program-sound"), $("program-video"));

window.addEventListener("hashchange", () => {
  const id = decodeURIComponent(location.hash.slice(1));
  if (server.token && id && id !== page.stage && producible().some((s) => s.id === id)) selectStage(id);
});

// ---- start ---------------------------------------------------------------------------

// A token in the URL is taken and removed from it (history, bookmarks, screen shares).
const fromUrl = takeFromUrl("token").token;
const saved = fromUrl || sessionStorage.getItem(TOKEN_KEY) || "";
if (saved) login(saved);
else $("token").focus();
