// The exhibition hall page: the 3D hall, the filters and list beside it, an exhibit's
// details with its model loading level by level, and the meeting request form.
import { HallScene, compressed } from "./hall-scene.js";
import { $, el, bilingual, api } from "./common.js";
import {
  titleOf, categoryOf, countryName, bytes, renderDetails, LodProgress, MeetingForm, showRequestStatus,
} from "./hall-ui.js";

// What the tests (and a curious visitor's console) can read.
const hall = {
  state: "loading", // "loading" | "ready" | "error"
  boothCount: 0,
  loadedModels: {}, // exhibit id -> largest level shown (0 is the largest model)
  errors: [],
};
window.hall = hall;

const page = {
  layout: null, // GET /api/v1/hall
  categories: new Map(), // id -> label
  colors: new Map(), // category id -> its aisles' colour
  items: [], // the list's exhibits
  selected: null,
  listToken: 0,
  detailToken: 0,
};

let visitor = visitorId();
const scene = makeScene();
const lodProgress = new LodProgress($("lod-progress"));
const meeting = new MeetingForm($("meeting-form"), { visitor: null });
visitor.then((id) => { meeting.visitor = id; }, () => {});

// ---- helpers -------------------------------------------------------------------------

/** The 3D hall, or (a browser without WebGL) a stand-in: the list, details and form still work. */
function makeScene() {
  try {
    return new HallScene($("view"), $("labels"), {
      onPick: (exhibit) => select(exhibit),
      onModelGone: (exhibit) => { delete hall.loadedModels[exhibit]; },
    });
  } catch (error) {
    const none = () => {};
    $("view").classList.add("no-3d");
    return {
      flat: true,
      setBooths: (booths) => booths.length,
      loadHall: () => Promise.reject(new Error(`this browser cannot show 3D (${error.message})`)),
      loadModel: async () => null,
      select: none, setFilter: none, setMode: none, overview: none, setInsetBottom: none,
    };
  }
}

/** The anonymous visitor id the server signed, kept in this browser; never tied to a person. */
async function visitorId({ renew = false } = {}) {
  const key = "forumcast.visitor";
  let id = null;
  try {
    id = renew ? null : localStorage.getItem(key);
  } catch {
    // storage switched off: a new id per visit
  }
  if (!id) {
    const response = await fetch("/api/v1/visitors", { method: "POST" });
    if (!response.ok) throw new Error(`/api/v1/visitors: ${response.status}`);
    id = (await response.json()).visitor;
    try {
      localStorage.setItem(key, id);
    } catch {
      // as above
    }
  }
  hall.visitor = id;
  return id;
}

/** The hall's reads; a refusal the server does not explain names the request. */
function get(path) {
  return api(path, { unexplained: (response) => `${path}: ${response.status} ${response.statusText}` });
}

/** A view beacon; best effort, never in the way of the page. */
async function beacon(exhibit, kind) {
  const send = async (id) => fetch(`/api/v1/exhibits/${encodeURIComponent(exhibit)}/views`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ visitor: id, kind }),
    keepalive: true,
  });
  try {
    if ((await send(await visitor)).status === 422) {
      // An id from before the server's secret changed (or an old unsigned one): get a new one.
      visitor = visitorId({ renew: true });
      meeting.visitor = await visitor;
      await send(await visitor);
    }
  } catch {
    // best effort
  }
}

function fail(message) {
  hall.errors.push(message);
  console.error(message);
}

// ---- the hall ------------------------------------------------------------------------

async function loadLayout() {
  page.layout = await get("/api/v1/hall");
  page.categories = new Map((page.layout.categories || []).map((c) => [c.id, c.label]));
  page.colors = new Map((page.layout.aisles || []).filter((a) => a.color).map((a) => [a.category, a.color]));
  fillFilters();
  hall.boothCount = scene.setBooths(page.layout.booths || []);
}

async function loadScene() {
  const expected = page.layout.hall_glb_bytes || 0;
  const meter = $("hall-progress");
  const text = $("hall-progress-text");
  await scene.loadHall(compressed(page.layout.hall_glb || "/hall.glb"), (loaded, total) => {
    const whole = total || expected;
    meter.value = whole ? Math.min(loaded / whole, 1) : 0;
    text.textContent = `Loading the hall · 正在加载展厅 ${bytes(loaded)}${whole ? ` / ${bytes(whole)}` : ""}`;
  });
  $("loading").hidden = true;
}

function fillFilters() {
  $("filter-category").replaceChildren(
    el("option", { value: "" }, "All categories · 全部类别"),
    ...(page.layout.categories || []).map((c) => el("option", { value: c.id }, c.label)));
  $("filter-country").replaceChildren(
    el("option", { value: "" }, "All countries · 全部国家和地区"),
    ...(page.layout.countries || []).map((code) => el("option", { value: code }, countryName(code))));
}

// ---- filters and the list ------------------------------------------------------------

function filters() {
  return {
    country: $("filter-country").value,
    category: $("filter-category").value,
    q: $("filter-q").value.trim(),
  };
}

async function refreshList() {
  const token = ++page.listToken;
  const wanted = filters();
  const params = new URLSearchParams({ per_page: "200" });
  for (const [key, value] of Object.entries(wanted)) if (value) params.set(key, value);
  const items = [];
  let total = 0;
  try {
    for (let number = 1, pages = 1; number <= pages; number++) {
      params.set("page", String(number));
      const body = await get(`/api/v1/exhibits?${params}`);
      if (token !== page.listToken) return;
      items.push(...body.items);
      total = body.total;
      pages = body.pages || 1;
    }
  } catch (error) {
    if (token !== page.listToken) return;
    $("list-count").textContent = `Could not load the exhibits: ${error.message}`;
    fail(`exhibits: ${error.message}`);
    return;
  }
  page.items = items;
  renderList(total);
  const filtered = Object.values(wanted).some(Boolean);
  scene.setFilter(filtered ? new Set(items.map((item) => item.id)) : null);
}

function renderList(total) {
  const all = page.layout?.booths?.length ?? total;
  $("list-count").textContent = total === all
    ? `${total} exhibits · 个展项`
    : `${total} of ${all} exhibits · 个展项`;
  $("exhibit-list").replaceChildren(...page.items.map((item) => {
    const category = categoryOf(item, page.categories);
    return el("li", {},
      el("button", {
        type: "button",
        class: "exhibit",
        "data-exhibit": item.id,
        "aria-current": item.id === page.selected ? "true" : null,
        onclick: () => select(item.id),
      },
      el("span", { class: "exhibit-booth" },
        el("span", { class: "swatch", style: { background: page.colors.get(category.id) || "transparent" } }),
        item.booth || ""),
      el("span", { class: "exhibit-text" },
        bilingual(titleOf(item), "strong"),
        el("span", { class: "exhibit-meta muted" },
          `${item.organisation ? `${item.organisation} · ` : ""}${item.country} · ${category.label}`))));
  }));
}

let typing = 0;
$("filter-q").addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(refreshList, 250);
});
$("filter-category").addEventListener("change", refreshList);
$("filter-country").addEventListener("change", refreshList);
$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(typing);
  refreshList();
});
$("filters").addEventListener("reset", () => setTimeout(refreshList));

// ---- one exhibit ---------------------------------------------------------------------

async function select(id, { fly = true } = {}) {
  const token = ++page.detailToken;
  page.selected = id;
  if (decodeURIComponent(location.hash.slice(1)) !== id) history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  for (const button of document.querySelectorAll("#exhibit-list .exhibit")) {
    if (button.dataset.exhibit === id) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  scene.select(id, { fly });
  const fromList = $("list-view").contains(document.activeElement);
  showView("details");
  if (fromList) $("back").focus({ preventScroll: true }); // the list just went away
  const booth = page.layout?.booths?.find((b) => b.exhibit === id);
  $("details").replaceChildren(
    booth ? bilingual({ en: booth.title_en, zh: booth.title_zh }, "h2") : null,
    el("p", { class: "muted" }, "Loading… · 加载中…"));
  lodProgress.reset([]);
  meeting.for(id);

  let exhibit;
  try {
    exhibit = await get(`/api/v1/exhibits/${encodeURIComponent(id)}`);
  } catch (error) {
    if (token !== page.detailToken) return;
    $("details").replaceChildren(el("p", { class: "error" }, `Could not load this exhibit: ${error.message}`));
    fail(`exhibit ${id}: ${error.message}`);
    return;
  }
  if (token !== page.detailToken) return;
  renderDetails($("details"), exhibit, page.categories);
  beacon(id, "detail");

  const lods = exhibit.model?.status === "ready" && !scene.flat ? exhibit.model.lods || [] : [];
  lodProgress.reset(lods);
  if (!lods.length) return;
  try {
    const level = await scene.loadModel(id, lods, (step) => {
      if (token === page.detailToken) lodProgress.update(step);
    });
    if (level === null) return; // another exhibit took over
    hall.loadedModels[id] = level;
    beacon(id, "model");
  } catch (error) {
    fail(`model of ${id}: ${error.message || error}`);
  }
}

function showView(which) {
  $("list-view").hidden = which !== "list";
  $("details-view").hidden = which !== "details";
  if (which === "details") $("panel").scrollTop = 0;
}

$("back").addEventListener("click", () => {
  const was = page.selected || "";
  showView("list");
  page.selected = null;
  scene.select(null);
  history.replaceState(null, "", location.pathname + location.search);
  document.querySelector(`#exhibit-list [data-exhibit="${CSS.escape(was)}"]`)?.focus();
});

window.addEventListener("hashchange", () => {
  const id = decodeURIComponent(location.hash.slice(1));
  if (id && id !== page.selected) select(id);
});

// ---- view controls -------------------------------------------------------------------

function setMode(mode) {
  scene.setMode(mode);
  $("mode-orbit").setAttribute("aria-pressed", String(mode === "orbit"));
  $("mode-walk").setAttribute("aria-pressed", String(mode === "walk"));
  $("walk-help").hidden = mode !== "walk";
}

$("mode-orbit").addEventListener("click", () => setMode("orbit"));
$("mode-walk").addEventListener("click", () => setMode("walk"));
$("overview").addEventListener("click", () => {
  scene.overview();
  setMode("orbit");
});

// On a phone the panel is a bottom sheet over the view: the scene frames what it leaves free.
const phone = matchMedia("(max-width: 700px)");
const followSheet = () => scene.setInsetBottom(phone.matches ? $("panel").offsetHeight : 0);
new ResizeObserver(followSheet).observe($("panel"));
phone.addEventListener("change", followSheet);

// The sheet shows a peek at the list, or most of the screen.
$("sheet-handle").addEventListener("click", () => {
  const full = $("panel").dataset.sheet !== "full";
  $("panel").dataset.sheet = full ? "full" : "peek";
  $("sheet-handle").setAttribute("aria-expanded", String(full));
});

// ---- start ---------------------------------------------------------------------------

async function start() {
  try {
    await loadLayout();
    refreshList(); // the list needs no 3D: it fills while the hall loads, or if it cannot
    await loadScene();
    hall.state = "ready";
  } catch (error) {
    hall.state = "error";
    $("hall-progress-text").textContent = `Could not load the hall · 展厅加载失败: ${error.message || error}`;
    $("hall-progress").hidden = true;
    fail(`hall: ${error.message || error}`);
  }
  document.body.dataset.hall = hall.state;
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted.startsWith("request=")) showRequestStatus(wanted.slice("request=".length));
  else if (wanted && page.layout) select(wanted);
}

start();
