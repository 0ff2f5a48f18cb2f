// What a dashboard view knows about the run: snapshot + deltas applied, as plain data
// (tested without a DOM). Messages: docs/widgets.md.

import { Curve, FIELDS } from "./curves.js";
import { bytesOf, typedArray } from "./protocol.js";

/**
 * What the kernel tells a dashboard view instead of the JS restating it (the `vocab` trait,
 * from nbtrain/widgets/vocab.py): worker statuses, which are final, which one is a failure,
 * a new worker's, the recent-episode count, the rolling-mean window and the grid kinds.
 * @typedef {object} Vocab
 * @property {string[]} statuses
 * @property {string} initial
 * @property {Set<string>} final
 * @property {string} failure
 * @property {number} recent
 * @property {number} rolling
 * @property {string[]} gridKinds
 */

const VOCAB_KEYS = ["statuses", "initial", "final", "failure", "recent", "rolling", "grid_kinds"];

/**
 * The `vocab` trait as the view uses it; a clear error when the kernel sent none.
 * @param {any} raw @returns {Vocab}
 */
export function vocabulary(raw) {
  const missing = VOCAB_KEYS.filter((k) => raw?.[k] === undefined || raw?.[k] === null);
  if (missing.length) throw new Error(`the kernel sent no ${missing.join(", ")} in the dashboard's vocab (is the nbtrain bundle older than the kernel's?)`);
  return {
    statuses: [...raw.statuses],
    initial: String(raw.initial),
    final: new Set(raw.final),
    failure: String(raw.failure),
    recent: Number(raw.recent),
    rolling: Number(raw.rolling),
    gridKinds: [...raw.grid_kinds],
  };
}

/**
 * @typedef {object} WorkerState
 * @property {Record<string, any>} scalars
 * @property {Curve} curve
 * @property {any[]} recent
 * @property {{kind: string, rows: string[]} | null} grid
 * @property {number | null} position
 * @property {any} frame
 * @property {number} envVersion bumps when grid, position or frame change
 * @property {number} dataVersion bumps when anything changes
 */

/** @returns {WorkerState} */
function emptyWorker() {
  return { scalars: {}, curve: new Curve(), recent: [], grid: null, position: null, frame: null, envVersion: 0, dataVersion: 0 };
}

/**
 * Empty a worker for a snapshot, in place: a worker tab built earlier holds this object, and
 * its versions only grow, so the tab redraws instead of taking the new state for one it drew.
 * @param {WorkerState} w
 */
function resetWorker(w) {
  Object.assign(w, emptyWorker(), { envVersion: w.envVersion + 1, dataVersion: w.dataVersion + 1 });
}

/** @param {any} ref @param {any[]} buffers */
function curveData(ref, buffers) {
  /** @type {Record<string, ArrayLike<number>>} */
  const out = {};
  for (const name of FIELDS) out[name] = typedArray(buffers, ref[name]);
  return out;
}

/**
 * Recent episodes arrive as columns; the view keeps rows.
 * @param {{ep_index: number[], total_reward: number[], length: number[], end: number[]} | undefined} cols
 */
export function recentRows(cols) {
  if (!cols) return [];
  return cols.ep_index.map((ep, i) => ({
    ep_index: ep,
    total_reward: cols.total_reward[i],
    length: cols.length[i],
    terminated: cols.end[i] === 1,
    truncated: cols.end[i] === 2,
  }));
}

/** @param {any} frame @param {any[]} buffers */
function decodeFrame(frame, buffers) {
  if (!frame) return null;
  const out = { ...frame };
  if (frame.png) out.png = bytesOf(buffers, frame.png).slice();
  return out;
}

/** The run as this view knows it; pure data, tested without a DOM. */
export class DashboardState {
  /** @param {Vocab} vocab */
  constructor(vocab) {
    this.vocab = vocab;
    /** @type {Map<string, WorkerState>} */
    this.workers = new Map();
    /** @type {string[]} */
    this.workerIds = [];
    this.seq = -1;
    this.ready = false;
    this.live = false;
    this.runId = "";
    this.envId = "";
    /** @type {Record<string, string>} worker id → colour, chosen by the kernel */
    this.colours = {};
    /** @type {string | null} how the run ended ("completed in 2.1 s"), null while it goes */
    this.outcome = null;
    /** @type {string | null} the run's telemetry.frames ("none", "ansi", "rgb_array"), null: unknown */
    this.frames = null;
  }

  /** @param {string} wid */
  worker(wid) {
    let w = this.workers.get(wid);
    if (!w) {
      w = emptyWorker();
      this.workers.set(wid, w);
      if (!this.workerIds.includes(wid)) this.workerIds.push(wid);
    }
    return w;
  }

  /** @param {any} msg @param {any[]} buffers */
  applySnapshot(msg, buffers) {
    this.workerIds = [...msg.worker_ids];
    for (const [wid, w] of this.workers) {
      if (this.workerIds.includes(wid)) resetWorker(w);
      else this.workers.delete(wid);
    }
    this.seq = msg.seq;
    this.live = msg.live;
    this.runId = msg.run_id;
    this.envId = msg.env_id;
    this.colours = { ...(msg.colours ?? {}) };
    this.outcome = msg.outcome ?? null;
    this.frames = msg.frames ?? null;
    for (const [wid, s] of Object.entries(msg.workers)) {
      const w = this.worker(wid);
      w.scalars = { ...s.scalars };
      if (s.curve) w.curve.apply(s.curve, curveData(s.curve, buffers));
      w.recent = recentRows(s.recent).slice(-this.vocab.recent);
      w.grid = s.grid ?? null;
      w.position = s.position ?? null;
      w.frame = decodeFrame(s.frame, buffers);
      w.envVersion += 1;
      w.dataVersion += 1;
    }
    this.ready = true;
  }

  /**
   * @param {any} msg @param {any[]} buffers
   * @returns {"ok" | "ignored" | "resync"}
   */
  applyDelta(msg, buffers) {
    if (!this.ready || msg.seq <= this.seq) return "ignored";
    const gap = msg.seq !== this.seq + 1;
    this.seq = msg.seq;
    let resync = gap;
    if ("outcome" in msg) this.outcome = msg.outcome;
    for (const [wid, change] of Object.entries(msg.workers)) {
      const w = this.worker(wid);
      w.dataVersion += 1;
      if (change.colour) this.colours[wid] = change.colour;
      if (change.scalars) Object.assign(w.scalars, change.scalars);
      if (change.curve && w.curve.apply(change.curve, curveData(change.curve, buffers)) === "gap") resync = true;
      if (change.recent) {
        const seen = new Set(w.recent.map((r) => r.ep_index));
        for (const r of recentRows(change.recent)) if (!seen.has(r.ep_index)) w.recent.push(r);
        w.recent.sort((a, b) => a.ep_index - b.ep_index);
        w.recent = w.recent.slice(-this.vocab.recent);
      }
      if ("grid" in change) { w.grid = change.grid; w.envVersion += 1; }
      if ("position" in change) { w.position = change.position; w.envVersion += 1; }
      if (change.frame) { w.frame = decodeFrame(change.frame, buffers); w.envVersion += 1; }
    }
    return resync ? "resync" : "ok";
  }

  /** A worker's status; a worker not heard from yet has the initial one. @param {string} wid */
  statusOf(wid) {
    return this.worker(wid).scalars.status ?? this.vocab.initial;
  }

  allFinal() {
    return this.workerIds.length > 0 && this.workerIds.every((wid) => this.vocab.final.has(this.statusOf(wid)));
  }
}

