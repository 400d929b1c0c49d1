// The producer console's upcoming sessions: the running session and those after it, as the
// server's scheduler sees them, day by day with their feeds, in the venue's time zone. Its
// clock() also gives the program panel's "Since".
import { el, bilingual } from "./common.js";

/** A time of day in ``zone`` (the venue's; undefined: this browser's). */
export function clock(iso, zone, { seconds = false } = {}) {
  return new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined, timeZone: zone,
  }).format(new Date(iso));
}

function dayLabel(iso, zone) {
  return new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: zone })
    .format(new Date(iso));
}

// The running session (if any) and those after it.
function upcomingSessions(body) {
  const sessions = body?.sessions || [];
  const from = body?.current || body?.next;
  if (!from) return [];
  const start = Date.parse(from.start);
  return sessions.filter((s) => Date.parse(s.start) >= start);
}

/**
 * Fill ``list`` from the stage's last GET /api/v1/stages/{stage} (``body``; null before the
 * first) and the session on air (``programSession``).
 */
export function renderUpcomingList(list, body, programSession, zone) {
  const sessions = upcomingSessions(body);
  const currentId = body?.current?.id;
  if (!sessions.length) {
    const text = body ? "No more sessions · 没有后续场次" : "";
    if (list.dataset.key !== text) {
      list.dataset.key = text;
      list.replaceChildren(el("li", { class: "muted" }, text));
    }
    return;
  }
  // Re-render only when something shown changed (keeps focus and screen readers calm).
  const key = JSON.stringify([currentId, programSession, sessions.map((s) => [s.id, s.start, s.end, s.input, s.backup_input])]);
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  let lastDay = null;
  list.replaceChildren(...sessions.map((s) => {
    const day = dayLabel(s.start, zone);
    const dayNote = day !== lastDay ? el("span", { class: "day muted" }, day) : null;
    lastDay = day;
    const feed = s.input
      ? el("span", { class: "feed muted" }, `Feed · 信号: ${s.input}${s.backup_input ? ` (backup · 备份 ${s.backup_input})` : ""}`)
      : null;
    return el("li", { class: `session${s.id === currentId ? " current" : ""}`, "data-session": s.id },
      el("span", { class: "when" },
        dayNote,
        el("time", { class: "start", datetime: s.start }, clock(s.start, zone)),
        "–",
        el("time", { class: "end", datetime: s.end }, clock(s.end, zone))),
      el("div", { class: "what" },
        bilingual(s.title, "strong"),
        s.id === currentId ? el("span", { class: "badge badge-live" }, "Now · 正在进行") : null,
        feed));
  }));
}
