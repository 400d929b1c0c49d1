// The producer console's input cards: one per input of the stage, each with its muted
// preview, health (bitrate, last fragment, picture, codecs, GOP, publisher), tally and
// Take button, kept in the order the server lists them and dropped when an input goes.
import { el, setText } from "./common.js";
import { LivePlayer } from "./player.js";

const TALLY_LABEL = {
  "on-air": "ON AIR · 播出中",
  preview: "PREVIEW · 预监中",
  off: "off · 未播出",
};

function field(label, name) {
  return el("div", {}, el("dt", {}, label), el("dd", { class: name }, "—"));
}

export class InputCards {
  /**
   * @param {HTMLElement} grid where the cards go
   * @param {import("./producer-api.js").ProducerApi} server gives each preview's URL
   * @param {{take: (id: string) => void, playerStatus: (node: HTMLElement, status: object) => void}} hooks
   *   a card's Take button, and how a preview's player state is shown
   */
  constructor(grid, server, { take, playerStatus }) {
    this.grid = grid;
    this.server = server;
    this.take = take;
    this.playerStatus = playerStatus;
    this.cards = new Map(); // input id -> {card, player, input}
  }

  /** An input's title as its card has it, else its id. */
  title(id) {
    return this.cards.get(id)?.input?.title || id;
  }

  /** Stop every preview and empty the grid. */
  clear() {
    for (const { player } of this.cards.values()) player.destroy();
    this.cards.clear();
    this.grid.replaceChildren();
  }

  makeCard(input) {
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
      el("button", { type: "button", class: "take", onclick: () => this.take(id) },
        "▶ Take · 切换", el("span", { class: "sr-only" }, ` ${input.title || id}`)));
    const player = new LivePlayer(video, { onStatus: (s) => this.playerStatus(status, s) });
    player.play(this.server.inputUrl(id));
    return { card, player, input };
  }

  /** Update the cards from the inputs' health (or, with no list, from ``program`` alone). */
  render(list, program) {
    const grid = this.grid;
    if (list) {
      const ids = new Set(list.map((input) => input.id));
      for (const [id, entry] of this.cards) {
        if (!ids.has(id)) {
          entry.player.destroy();
          entry.card.remove();
          this.cards.delete(id);
        }
      }
      for (const input of list) {
        let entry = this.cards.get(input.id);
        if (!entry) {
          entry = this.makeCard(input);
          this.cards.set(input.id, entry);
        }
        entry.input = input;
      }
      const order = list.map((input) => this.cards.get(input.id).card);
      if (order.some((card, i) => grid.children[i] !== card) || grid.children.length !== order.length) {
        grid.replaceChildren(...order);
      }
      if (!list.length) grid.replaceChildren(el("p", { class: "muted" }, "No inputs on this stage · 此会场没有输入源"));
    }
    for (const entry of this.cards.values()) updateCard(entry, program);
  }
}

// One card's badges, tally and health from its input and what is on air.
function updateCard({ card, input }, program) {
  const q = (selector) => card.querySelector(selector);
  const live = input.state === "live";
  const up = input.up ?? live;
  const health = up ? "up" : live ? "stalled" : "offline";
  card.dataset.state = input.state;
  card.dataset.health = health;
  const badge = q(".badge-health");
  badge.className = `badge badge-health badge-${health}`;
  setText(badge, { up: "UP · 在线", stalled: "STALLED · 卡顿", offline: "OFFLINE · 离线" }[health]);

  const onAir = input.on_air ?? program?.source === input.id;
  const preview = Boolean(input.preview);
  card.dataset.onAir = String(onAir);
  card.dataset.pending = String(program?.pending?.source === input.id);
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
