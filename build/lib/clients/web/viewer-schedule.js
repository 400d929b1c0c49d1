// The attendee page's schedule: times in the zone shown (the event's or this browser's),
// the selected stage's sessions day by day, and the now-playing box (what is on air, or why
// the slate is up). It reads the page's state and writes only its own parts of the page.
import { $, el, bilingual } from "./common.js";

export const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;
const STATE_LABEL = {
  live: "LIVE · 直播中",
  between: "Break · 休息",
  upcoming: "Upcoming · 即将开始",
  idle: "Idle · 空闲",
  ended: "Ended · 已结束",
};

export function dayLabel(key) {
  const date = new Date(`${key}T12:00:00Z`);
  return new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" })
    .format(date);
}

export function badge(state) {
  return el("span", { class: `badge badge-${state}` }, STATE_LABEL[state] || state);
}

function speakers(list) {
  if (!list?.length) return null;
  return el("ul", { class: "speakers", "aria-label": "Speakers" },
    list.map((p) => el("li", {},
      p.name,
      p.affiliation ? el("span", { class: "muted" }, ` · ${p.affiliation}`) : null,
      p.remote ? el("span", { class: "remote", title: "speaking remotely" }, "🌐 remote · 远程") : null)));
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

export class Schedule {
  /**
   * @param {object} page the viewer's state: event, stages, stage, sessions, day, now, tzChoice
   * @param {{locked: (stage: object) => boolean}} hooks a closed-door stage without an invitation
   */
  constructor(page, { locked }) {
    this.page = page;
    this.locked = locked;
  }

  zone() {
    return this.page.tzChoice === "local" ? LOCAL_ZONE : this.page.event?.timezone || LOCAL_ZONE;
  }

  clock(iso, timeZone = this.zone()) {
    return new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone }).format(new Date(iso));
  }

  dayKey(iso, timeZone = this.zone()) {
    return new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit", timeZone })
      .format(new Date(iso));
  }

  span(session) {
    let text = `${this.clock(session.start)}–${this.clock(session.end)}`;
    if (this.dayKey(session.end) !== this.dayKey(session.start)) text += " (+1)";
    return text;
  }

  /** The day tabs and the selected day's sessions of the selected stage. */
  render() {
    const page = this.page;
    const days = [...new Set(page.sessions.map((s) => this.dayKey(s.start)))].sort();
    const today = page.event ? this.dayKey(page.event.now) : null;
    if (!days.includes(page.day)) page.day = days.includes(today) ? today : days[0] || null;

    const tabs = $("day-tabs");
    tabs.replaceChildren(...days.map((day) => el("button", {
      type: "button",
      role: "tab",
      id: `day-${day}`,
      "aria-selected": String(day === page.day),
      tabindex: day === page.day ? "0" : "-1",
      onclick: () => { page.day = day; this.render(); },
      onkeydown: (event) => this.moveTab(event, days),
    }, day === today ? `Today · 今天 (${dayLabel(day)})` : dayLabel(day))));

    const list = $("sessions");
    if (page.day) list.setAttribute("aria-labelledby", `day-${page.day}`);
    const stage = page.stages.find((s) => s.id === page.stage);
    if (!page.sessions.length) {
      const text = stage && this.locked(stage) ? "🔒 The program of a closed-door stage needs an invitation." : "No sessions.";
      list.replaceChildren(el("li", { class: "muted" }, text));
      return;
    }
    const currentId = page.now?.session?.id ?? stage?.current?.id;
    list.replaceChildren(...page.sessions.filter((s) => this.dayKey(s.start) === page.day).map((s) => {
      // The venue's own wall clock too, when it differs from the zone shown ("14:30 in Lyon").
      const city = stage?.venue?.city || stage?.venue?.name?.en || "venue";
      const venueNote = s.venue_timezone !== this.zone()
        ? el("span", { class: "venue-time muted" },
          `${this.clock(s.venue_start, s.venue_timezone)}–${this.clock(s.venue_end, s.venue_timezone)} ${city} time`
          + ` (${s.venue_timezone})`)
        : null;
      return el("li", { class: `session${s.id === currentId ? " current" : ""}`, "data-session": s.id },
        el("time", { class: "when", datetime: s.start }, this.span(s)),
        el("div", { class: "what" },
          bilingual(s.title, "strong"),
          s.id === currentId ? el("span", { class: "badge badge-live" }, "Now · 正在进行") : null,
          s.do_not_stream ? el("span", { class: "badge" }, "Not streamed · 不直播") : null,
          venueNote,
          speakers(s.speakers)));
    }));
  }

  moveTab(event, days) {
    const page = this.page;
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const index = (days.indexOf(page.day) + step + days.length) % days.length;
    page.day = days[index];
    this.render();
    $(`day-${page.day}`).focus();
  }

  /** The now-playing box: the session on now and the next, or the stand-by slate and why. */
  renderNow() {
    const page = this.page;
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
    const nextLine = next ? el("p", { class: "next" }, "Next · 下一场: ", bilingual(next.title), ` ${this.span(next)}`) : null;
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
        el("p", { class: "muted" }, this.span(current)),
        speakers(current.speakers)) : null,
      program?.reason === "failover"
        ? el("p", { class: "muted backup-note" }, "On the backup feed · 备用信号") : null,
      nextLine].filter(Boolean)); // replaceChildren would print a null as the text "null"
  }
}
