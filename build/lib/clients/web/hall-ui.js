// The hall page's HTML side: small DOM and formatting helpers, an exhibit's details with
// its model's levels, and the meeting request form.

import { $, el, bilingual } from "./common.js";

/** Title of an exhibit from the list, the details or the hall's booth entry alike. */
export function titleOf(item) {
  if (item.title && typeof item.title === "object") return item.title;
  return { en: item.title_en || item.title || "", zh: item.title_zh || "" };
}

export function categoryOf(item, labels) {
  const id = typeof item.category === "object" ? item.category?.id : item.category;
  const label = typeof item.category === "object" ? item.category?.label : null;
  return { id, label: label || labels.get(id) || id || "" };
}

const REGION_EN = safeDisplayNames("en");
const REGION_ZH = safeDisplayNames("zh");

function safeDisplayNames(locale) {
  try {
    return new Intl.DisplayNames([locale], { type: "region" });
  } catch {
    return null;
  }
}

export function countryName(code) {
  const en = REGION_EN?.of(code) || code;
  const zh = REGION_ZH?.of(code);
  return zh && zh !== en ? `${en} · ${zh}` : en;
}

const STAGES = {
  seed: "Seed · 种子轮",
  "series-a": "Series A · A轮",
  "series-b": "Series B · B轮",
  growth: "Growth · 成长期",
  "project-finance": "Project finance · 项目融资",
  "strategic-partner": "Strategic partner · 战略合作",
};

export function stageName(stage) {
  return STAGES[stage] || stage || "";
}

export function bytes(n) {
  if (!Number.isFinite(n) || n <= 0) return "0 kB";
  if (n < 1e6) return `${Math.max(1, Math.round(n / 1e3))} kB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

const count = new Intl.NumberFormat("en");

// ---- details -------------------------------------------------------------------------

/** The exhibit's details (everything but the model's progress and the form). */
export function renderDetails(box, exhibit, categories) {
  const category = categoryOf(exhibit, categories);
  const summary = exhibit.summary || {};
  const model = exhibit.model || { status: "none", lods: [] };
  box.replaceChildren(
    el("p", { class: "booth-code" }, `Booth · 展位 ${exhibit.booth || ""}`,
      exhibit.demo ? el("span", { class: "badge" }, "Demo · 演示") : null),
    bilingual(titleOf(exhibit), "h2"),
    el("dl", { class: "facts" },
      el("dt", {}, "Organisation · 机构"), el("dd", {}, exhibit.organisation || "—"),
      el("dt", {}, "Country · 国家/地区"), el("dd", {}, countryName(exhibit.country)),
      el("dt", {}, "Category · 类别"), el("dd", {}, category.label),
      el("dt", {}, "Investment stage · 融资阶段"), el("dd", {}, stageName(exhibit.investment_stage))),
    summary.en ? el("p", { class: "summary" }, summary.en) : null,
    summary.zh ? el("p", { class: "summary", lang: "zh" }, summary.zh) : null,
    modelStats(model),
  );
}

function modelStats(model) {
  if (model.status !== "ready" || !model.lods?.length) {
    const text = model.status === "processing"
      ? "The 3D model is being prepared · 3D 模型处理中"
      : "No 3D model yet · 暂无 3D 模型";
    return el("p", { class: "muted model-none" }, text);
  }
  let size = null;
  if (Array.isArray(model.bounds) && model.bounds.length === 2) {
    const [lo, hi] = model.bounds;
    size = hi.map((v, i) => (v - lo[i]).toFixed(1)).join(" × ");
  }
  return el("section", { class: "model-stats", "aria-label": "3D model" },
    el("h3", {}, "3D model · 3D 模型"),
    size ? el("p", { class: "muted" }, `${size} m (w × h × d)`) : null,
    el("table", {},
      el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, "LOD"), el("th", { scope: "col" }, "Triangles"),
        el("th", { scope: "col" }, "Vertices"), el("th", { scope: "col" }, "Size"))),
      el("tbody", {}, model.lods.map((lod) => el("tr", {},
        el("td", {}, String(lod.level)),
        el("td", {}, lod.triangles != null ? count.format(lod.triangles) : "—"),
        el("td", {}, lod.vertices != null ? count.format(lod.vertices) : "—"),
        el("td", {}, bytes(lod.bytes)))))));
}

/** "LOD 2 → 1 → 0": one step per level, smallest first, each with its bytes. */
export class LodProgress {
  constructor(box) {
    this.box = box;
    this.steps = new Map();
  }

  reset(lods) {
    this.steps.clear();
    const levels = lods.filter((lod) => lod.url).sort((a, b) => b.level - a.level);
    if (!levels.length) {
      this.box.replaceChildren();
      this.box.hidden = true;
      return;
    }
    this.box.hidden = false;
    const items = levels.map((lod, index) => {
      const meter = el("progress", { max: "1", value: "0" });
      const text = el("span", { class: "lod-bytes" }, bytes(lod.bytes));
      const item = el("li", { "data-level": String(lod.level), "data-state": "waiting" },
        index ? el("span", { class: "arrow", "aria-hidden": "true" }, "→") : null,
        el("span", { class: "lod-name" }, `LOD ${lod.level}`), meter, text);
      this.steps.set(lod.level, { item, meter, text });
      return item;
    });
    this.box.replaceChildren(el("span", { class: "lod-title" }, "Model · 模型"), el("ol", {}, items));
  }

  update({ level, state, loaded, total }) {
    const step = this.steps.get(level);
    if (!step) return;
    step.item.dataset.state = state;
    step.meter.value = total ? Math.min(loaded / total, 1) : 0;
    step.text.textContent = state === "done"
      ? `✓ ${bytes(total)}`
      : state === "error" ? "failed · 失败" : `${bytes(loaded)} / ${bytes(total)}`;
  }
}

// ---- meeting requests ----------------------------------------------------------------

const MAX_SLOTS = 3;

/** The browser's own UTC offset at that local moment, "+08:00". */
function offset(date) {
  const minutes = -date.getTimezoneOffset();
  const abs = Math.abs(minutes);
  const pad = (n) => String(n).padStart(2, "0");
  return `${minutes >= 0 ? "+" : "-"}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** A datetime-local value ("2020-12-07T15:00") as aware ISO 8601 in the browser's zone. */
export function awareIso(value) {
  const date = new Date(value); // a date-time without an offset is local time
  if (Number.isNaN(date.getTime())) return value;
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`
    + `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}${offset(date)}`;
}

/** The form for asking an exhibitor for a meeting, and what the API says of it. */
export class MeetingForm {
  constructor(form, { visitor }) {
    this.form = form;
    this.visitor = visitor;
    this.exhibit = null;
    this.slots = form.querySelector(".slot-list");
    this.result = form.querySelector(".meeting-result");
    this.addButton = form.querySelector(".add-slot");
    this.addButton.addEventListener("click", () => this.addSlot().focus());
    form.querySelector(".slot-zone").textContent = `(${Intl.DateTimeFormat().resolvedOptions().timeZone})`;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.reset();
  }

  /** A blank form for ``exhibit``. */
  for(exhibit) {
    if (exhibit !== this.exhibit) this.reset();
    this.exhibit = exhibit;
  }

  reset() {
    this.form.reset();
    this.slots.replaceChildren();
    this.addSlot();
    this.clearErrors();
    this.result.replaceChildren();
  }

  addSlot() {
    const index = this.slots.children.length;
    const input = el("input", {
      type: "datetime-local", step: "900", name: "slot", "aria-label": `Proposed time ${index + 1}`,
      min: this.earliest(),
    });
    const remove = el("button", {
      type: "button", class: "remove-slot", "aria-label": `Remove time ${index + 1}`,
      onclick: () => {
        row.remove();
        this.addButton.hidden = false;
      },
    }, "✕");
    const row = el("div", { class: "slot" }, input, index ? remove : null,
      el("p", { class: "field-error", "data-error-for": `slot-${index}` }));
    this.slots.append(row);
    this.addButton.hidden = this.slots.children.length >= MAX_SLOTS;
    return input;
  }

  earliest() {
    const next = new Date(Date.now() + 15 * 60 * 1000);
    next.setMinutes(Math.ceil(next.getMinutes() / 15) * 15, 0, 0);
    return awareIso(next).slice(0, 16);
  }

  clearErrors() {
    for (const node of this.form.querySelectorAll(".field-error")) node.textContent = "";
    for (const node of this.form.querySelectorAll("[aria-invalid]")) {
      node.removeAttribute("aria-invalid");
      node.removeAttribute("aria-describedby");
    }
  }

  async submit() {
    if (!this.exhibit) return;
    this.clearErrors();
    this.result.replaceChildren("Sending… · 发送中…");
    const data = new FormData(this.form);
    const sent = [...this.slots.querySelectorAll("input[name=slot]")].filter((input) => input.value);
    const body = {
      name: data.get("name"),
      organisation: data.get("organisation"),
      email: data.get("email"),
      message: data.get("message"),
      slots: sent.map((input) => awareIso(input.value)),
      visitor: this.visitor,
    };
    const button = this.form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch(`/api/v1/exhibits/${encodeURIComponent(this.exhibit)}/meeting-requests`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        this.result.replaceChildren(
          el("strong", {}, "Request sent · 请求已发送"), ` (${answer.status || "pending"}) `,
          el("a", { href: answer.status_page || answer.status_url, class: "status-link", target: "_blank",
            rel: "noopener" }, "Follow its status · 查看状态"),
          el("span", { class: "muted" }, " (keep this link: it is the only way back · 请保存此链接)"));
        return;
      }
      this.showErrors(response.status, answer.error || {}, sent);
    } catch (error) {
      this.result.replaceChildren(el("span", { class: "error" }, `Could not send: ${error.message}`));
    } finally {
      button.disabled = false;
    }
  }

  showErrors(status, error, sent) {
    if (status === 429) {
      this.result.replaceChildren(el("span", { class: "error" },
        "Too many requests: please try again later · 请求过多，请稍后再试"));
      return;
    }
    const unplaced = [];
    for (const { field = "", reason = "" } of error.details || []) {
      const slot = /^slots\[(\d+)\]$/.exec(field);
      let input = null;
      let box = null;
      if (slot && sent[Number(slot[1])]) {
        input = sent[Number(slot[1])];
        box = input.parentElement.querySelector(".field-error");
      } else if (field === "slots") {
        input = this.slots.querySelector("input");
        box = this.form.querySelector('[data-error-for="slots"]');
      } else if (this.form.elements[field]) {
        input = this.form.elements[field];
        box = this.form.querySelector(`[data-error-for="${field}"]`);
      }
      if (!box) {
        unplaced.push(`${field || "request"} ${reason}`.trim());
        continue;
      }
      box.id ||= `error-${field.replace(/\W+/g, "-")}`;
      box.textContent = box.textContent ? `${box.textContent}; ${reason}` : reason;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", box.id);
    }
    this.result.replaceChildren(el("span", { class: "error" },
      [error.message || `The request failed (${status})`, ...unplaced].join(" — ")));
    this.form.querySelector("[aria-invalid]")?.focus();
  }
}

const STATUS_TEXT = {
  pending: "Waiting for the exhibitor · 等待展商回复",
  accepted: "Accepted · 已接受",
  declined: "Declined · 已婉拒",
};

function localTime(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? iso
    : `${when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })} (${iso})`;
}

/** The requester's view of a meeting request, from the secret in /hall#request=SECRET. */
export async function showRequestStatus(secret) {
  const dialog = $("request-status");
  const body = $("request-status-body");
  body.replaceChildren("Loading · 加载中…");
  if (!dialog.open) dialog.showModal();
  const response = await fetch(`/api/v1/meeting-requests/${encodeURIComponent(secret)}`);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    body.replaceChildren(el("p", { class: "error" },
      answer.error?.message || `This link does not work (${response.status}) · 此链接无效`));
    return;
  }
  body.replaceChildren(
    el("p", {}, el("strong", {}, answer.exhibit_title || answer.exhibit)),
    el("p", { class: `request-state state-${answer.status}`, "data-status": answer.status },
      STATUS_TEXT[answer.status] || answer.status),
    answer.accepted_slot ? el("p", {}, "Meeting time · 洽谈时间: ", el("strong", {}, localTime(answer.accepted_slot)))
      : null,
    answer.decline_reason ? el("p", {}, "Reason · 原因: ", answer.decline_reason) : null,
    el("p", { class: "muted" }, "Proposed · 建议时间:"),
    el("ul", {}, (answer.slots || []).map((slot) => el("li", {}, localTime(slot)))),
  );
}
