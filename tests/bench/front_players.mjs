// Simulated LL-HLS players for tests/bench/bench_front.py: Node, no dependencies.
//
//   node tests/bench/front_players.mjs HOST PORT STAGE PLAYERS DURATION_S RAMP_PER_S OUT.json
//
// Why Node: one Python asyncio process tops out near 20k requests/s on a core, and 5,000
// LL-HLS players at the live edge ask for about 50k/s (a blocking reload and a part every
// 200 ms each). This is the leanest generator we can write without a build step: raw TCP
// sockets (node:net), one keep-alive HTTP/1.1 connection per player, one request at a time,
// Content-Length bodies only (a chunked answer is an error), part bodies counted, not kept.
//
// Each player does what an LL-HLS client does at the live edge: the multivariant playlist,
// the media playlist, then in a loop every part from the one after the last it has up to the
// newest listed, in order, and a blocking reload for the next part
// (`_HLS_msn=M&_HLS_part=P`, M the segment being built, P the number of its parts listed:
// the same URL for every player in the same state, as a shared cache needs). Players join at
// RAMP per second; the steady phase runs for DURATION_S from SETTLE_S after the last one
// joined (or after the ramp's time plus RAMP_SLACK_S, if some never join), and the players
// stop GRACE_S after it.
//
// Glass-to-glass per part: the moment a player has the whole part − the part's start on the
// wall clock, from the playlist (its segment's EXT-X-PROGRAM-DATE-TIME, which the origin takes
// from the encoder's capture time, plus the durations of the parts before it in the
// segment). The report (JSON, to OUT) has counts and percentiles of the steady phase.
import net from "node:net";
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const SETTLE_S = 3;
const GRACE_S = 1;
const RAMP_SLACK_S = 20;
const REQUEST_TIMEOUT_MS = 20_000; // longer than any wait the origin or the front's cache lock holds
const END_SLACK_S = 5; // players still waiting this long after the end are given up
const now = () => performance.timeOrigin + performance.now(); // Unix ms, sub-ms resolution

const [host, portText, stage, playersText, durationText, rampText, out] = process.argv.slice(2);
const port = Number(portText);
const players = Number(playersText);
const durationMs = Number(durationText) * 1000;
const ramp = Number(rampText);

const tally = {
  startedAt: now(),
  steadyFrom: Infinity,
  steadyTo: Infinity,
  joined: 0,
  requests: { reload: 0, part: 0 },
  bytes: { reload: 0, part: 0 },
  perSecond: {}, // "kind@unix second" -> count (whole run)
  errors: {},
  reconnects: 0,
  joinMs: [], // whole run: a player's start → it has its media playlist
  glass: [], // ms, steady phase: part at the player − part start (program date time)
  fanout: [], // ms, steady phase: part at the player − first time any player saw it listed
  held: [], // ms, steady phase: blocking reload asked → answered
  partsByPlayer: new Array(players).fill(0),
};

function error(what) {
  tally.errors[what] = (tally.errors[what] || 0) + 1;
}

function count(kind, size, at) {
  const key = `${kind}@${Math.floor(at / 1000)}`;
  tally.perSecond[key] = (tally.perSecond[key] || 0) + 1;
  if (at < tally.steadyFrom || at > tally.steadyTo) return false;
  tally.requests[kind] += 1;
  tally.bytes[kind] += size;
  return true;
}

// --- what the playlists said, shared by all players ---------------------------------------------

const partStart = new Map(); // part number -> Unix ms of its first sample
const firstListed = new Map(); // part number -> when a player first saw it listed
const stateOf = new Map(); // preload hint number -> [msn, part] of the blocking reload after it

/** The preload hint's part number, read from the end of a media playlist. */
function hintOf(text) {
  const at = text.lastIndexOf("#EXT-X-PRELOAD-HINT");
  const slash = text.indexOf("/part/", at);
  return at < 0 || slash < 0 ? -1 : parseInt(text.slice(slash + 6, text.indexOf(".m4s", slash)), 10);
}

/** Learn the parts' start times and the reload state of a playlist not seen before. */
function learn(text, at) {
  const hint = hintOf(text);
  if (hint < 0 || stateOf.has(hint)) return hint;
  let msn = 0;
  let segmentStart = NaN;
  let nextStart = NaN;
  let offset = 0;
  let index = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) {
      msn = parseInt(line.slice(22), 10);
    } else if (line.startsWith("#EXT-X-PROGRAM-DATE-TIME:")) {
      segmentStart = Date.parse(line.slice(25));
      offset = 0;
    } else if (line.startsWith("#EXT-X-PART:")) {
      const duration = parseFloat(line.slice(line.indexOf("DURATION=") + 9));
      const uri = line.indexOf("/part/");
      const number = parseInt(line.slice(uri + 6, line.indexOf(".m4s", uri)), 10);
      if (!partStart.has(number) && !Number.isNaN(segmentStart)) partStart.set(number, segmentStart + offset);
      if (!firstListed.has(number)) firstListed.set(number, at);
      offset += duration * 1000;
      index += 1;
    } else if (line.startsWith("#EXTINF:")) {
      nextStart = segmentStart + parseFloat(line.slice(8)) * 1000;
    } else if (line.length && !line.startsWith("#")) {
      msn += 1; // a segment's URI closes it
      segmentStart = nextStart;
      offset = 0;
      index = 0;
    }
  }
  stateOf.set(hint, [msn, index]);
  return hint;
}

// --- one keep-alive HTTP/1.1 connection -----------------------------------------------------------

class Connection {
  constructor() {
    this.socket = null;
    this.waiter = null;
    this.head = null;
    this.body = [];
    this.remaining = -1;
    this.size = 0;
    this.status = 0;
    this.keep = false;
    this.close = false;
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true, timeout: REQUEST_TIMEOUT_MS });
      socket.once("connect", () => resolve());
      socket.on("timeout", () => socket.destroy(new Error("no answer within the timeout")));
      socket.once("error", (err) => reject(err));
      socket.on("data", (chunk) => this.received(chunk));
      socket.on("close", () => {
        if (this.socket === socket) this.socket = null;
        const waiter = this.waiter;
        this.waiter = null;
        if (waiter) waiter.reject(socket.errored || new Error("the server closed the connection"));
      });
      socket.on("error", () => {});
      this.socket = socket;
    });
  }

  received(chunk) {
    if (this.remaining < 0) {
      this.head = this.head ? Buffer.concat([this.head, chunk]) : chunk;
      const end = this.head.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = this.head.toString("latin1", 0, end).toLowerCase();
      chunk = this.head.subarray(end + 4);
      this.head = null;
      this.status = parseInt(head.slice(9, 12), 10);
      const at = head.indexOf("\r\ncontent-length:");
      if (at < 0) {
        // Chunked or close-delimited bodies are not what the origin or the front send here.
        this.fail(new Error(`no Content-Length (status ${this.status})`));
        return;
      }
      const stop = head.indexOf("\r\n", at + 2);
      this.size = this.remaining = parseInt(head.slice(at + 17, stop < 0 ? undefined : stop), 10);
      this.close = head.includes("\r\nconnection: close");
      this.body = [];
    }
    if (chunk.length) {
      const take = Math.min(chunk.length, this.remaining);
      if (this.keep) this.body.push(take === chunk.length ? chunk : chunk.subarray(0, take));
      this.remaining -= take;
    }
    if (this.remaining === 0) {
      this.remaining = -1;
      const waiter = this.waiter;
      this.waiter = null;
      const body = this.keep ? Buffer.concat(this.body).toString("latin1") : null;
      this.body = [];
      if (this.close) this.drop();
      if (waiter) waiter.resolve([this.status, body, this.size]);
    }
  }

  fail(err) {
    const waiter = this.waiter;
    this.waiter = null;
    this.drop();
    if (waiter) waiter.reject(err);
  }

  drop() {
    if (this.socket) this.socket.destroy();
    this.socket = null;
    this.head = null;
    this.remaining = -1;
  }

  /** [status, body (if kept) as a latin1 string, body size]; reconnects if the server closed. */
  async get(path, keep) {
    if (this.socket === null) {
      if (this.opened) tally.reconnects += 1;
      this.opened = true;
      await this.open();
    }
    this.keep = keep;
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
    });
  }
}

// --- a player ----------------------------------------------------------------------------------

async function player(number) {
  const conn = new Connection();
  const begun = now();
  let doing = "index";
  try {
    let [status, body] = await conn.get(`/live/${stage}/index.m3u8`, true);
    if (status !== 200) return error(`index ${status}`);
    const mediaLine = body.split("\n").find((line) => line.startsWith("media.m3u8"));
    const media = `/live/${stage}/${mediaLine.trim()}`;
    const join = media.includes("?") ? "&" : "?";
    doing = "media playlist";
    [status, body] = await conn.get(media, true);
    if (status !== 200) return error(`playlist ${status}`);
    let hint = learn(body, now());
    const slash = body.lastIndexOf("/part/");
    const prefix = `/live/${stage}/${body.slice(body.lastIndexOf('URI="', slash) + 5, slash)}/part/`;
    let wanted = hint - 1; // the live edge
    tally.joined += 1;
    tally.joinMs.push(now() - begun);
    while (now() < tally.stopAt) {
      doing = "part";
      while (wanted < hint && now() < tally.stopAt) {
        const [got, , size] = await conn.get(`${prefix}${wanted}.m4s`, false);
        const at = now();
        if (got === 200) {
          if (count("part", size, at)) {
            tally.partsByPlayer[number] += 1;
            const start = partStart.get(wanted);
            if (start !== undefined) tally.glass.push(at - start);
            if (process.env.DEBUG && start !== undefined && at - start > 3000 && tally.glass.length % 50 === 0) console.log("late", number, wanted, hint, at - start, new Date(start).toISOString());
            const listed = firstListed.get(wanted);
            if (listed !== undefined) tally.fanout.push(at - listed);
          }
          wanted += 1;
        } else if (got === 404 && wanted < hint - 1) {
          error("part gone (404): skipped to the edge");
          wanted = hint - 1;
        } else {
          error(`part ${got}`);
          wanted = hint;
        }
      }
      doing = "blocking reload";
      const [msn, part] = stateOf.get(hint);
      const asked = now();
      const [got, text, size] = await conn.get(`${media}${join}_HLS_msn=${msn}&_HLS_part=${part}`, true);
      const at = now();
      if (got === 200) {
        if (count("reload", size, at)) tally.held.push(at - asked);
        hint = learn(text, at);
      } else if (got === 503) {
        error("reload 503 (not yet)");
      } else {
        error(`reload ${got}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  } catch (err) {
    error(`player, ${doing}: ${String(err.message || err).slice(0, 100)}`);
  } finally {
    conn.drop();
  }
}

// --- the run ------------------------------------------------------------------------------------

function stats(values, digits = 0) {
  const sorted = Float64Array.from(values).sort();
  const pick = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : null);
  const round = (v) => (v === null ? null : Number(v.toFixed(digits)));
  return {
    n: sorted.length,
    p50: round(pick(0.5)),
    p95: round(pick(0.95)),
    p99: round(pick(0.99)),
    min: round(sorted.length ? sorted[0] : null),
    max: round(sorted.length ? sorted[sorted.length - 1] : null),
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const state = { started: now(), rampDone: NaN, settled: 0 };

/** The report (JSON, to OUT): what the players did in the steady phase. */
function finish(ended) {
  if (state.settled < players) tally.errors[`player still running at the end (${ended})`] = players - state.settled;
  const steadyS = Math.max(0, (Math.min(tally.steadyTo, now()) - tally.steadyFrom) / 1000) || 0;
  const cpu = process.cpuUsage();
  const report = {
    players,
    joined: tally.joined,
    started: state.started / 1000,
    ramp_done: state.rampDone / 1000,
    steady_from: tally.steadyFrom / 1000,
    steady_to: Math.min(tally.steadyTo, now()) / 1000,
    steady_s: steadyS,
    requests: tally.requests,
    bytes: tally.bytes,
    per_second: tally.perSecond,
    errors: tally.errors,
    reconnects: tally.reconnects,
    glass_ms: stats(tally.glass),
    fanout_ms: stats(tally.fanout),
    held_ms: stats(tally.held),
    join_ms: stats(tally.joinMs),
    parts_per_player_s: stats(
      tally.partsByPlayer.map((n) => (steadyS > 0 ? n / steadyS : 0)),
      2,
    ),
    cpu_s: (cpu.user + cpu.system) / 1e6,
  };
  writeFileSync(out, JSON.stringify(report));
}

async function main() {
  const started = state.started;
  tally.stopAt = Infinity;
  const rampLimit = started + (players / ramp + RAMP_SLACK_S) * 1000;
  const tasks = [];
  // Player n joins at started + n / ramp (on time even if a busy loop wakes us late).
  for (let n = 0; n < players; n += 1) {
    const task = player(n);
    task.finally(() => (state.settled += 1));
    tasks.push(task);
    if (n % 10 === 9) await sleep(started + ((n + 1) / ramp) * 1000 - now());
  }
  let lastLog = 0;
  while (tally.joined + state.settled < players && now() < rampLimit) {
    if (now() - lastLog > 5000) {
      lastLog = now();
      console.log(`${((now() - started) / 1000).toFixed(1)} s: ${tally.joined} joined, ${state.settled} ended`);
    }
    await sleep(50);
  }
  state.rampDone = now();
  tally.steadyFrom = state.rampDone + SETTLE_S * 1000;
  tally.steadyTo = tally.steadyFrom + durationMs;
  tally.stopAt = tally.steadyTo + GRACE_S * 1000;
  console.log(`ramp done after ${((state.rampDone - started) / 1000).toFixed(1)} s: ${tally.joined} joined`);
  const end = tally.stopAt + END_SLACK_S * 1000;
  while (state.settled < players && now() < end) await sleep(50);
  finish("given up");
}

// The harness stops a generator that overruns with SIGTERM: report what there is.
process.on("SIGTERM", () => {
  finish("stopped by the harness");
  process.exit(3);
});
main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
