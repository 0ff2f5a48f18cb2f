// Learning-curve data as the kernel sends it, kept free of the DOM so it is tested directly.
// The kernel buckets episodes (nbtrain/live/curve.py): a bucket at `level` L holds the
// episodes k·2^L … (k+1)·2^L − 1 with their count, min, max and mean return, the rolling
// mean of the last 20 *episodes* at its last episode, and the mean length. Nothing here
// averages points again: every value drawn is an episode's return, a bucket's min / max /
// mean (labelled as such) or a true mean of 20 episodes.

// as they travel; a bucket's index is last_ep >> level
export const FIELDS = /** @type {const} */ (["count", "last_ep", "r_min", "r_max", "r_mean", "roll", "len_mean"]);

/**
 * Trailing rolling mean over `window` values (shorter at the start), as pandas'
 * `rolling(window, min_periods=1).mean()`. Used only where values are episodes.
 * @param {ArrayLike<number>} values
 * @param {number} window
 */
export function rollingMean(values, window) {
  const out = new Float64Array(values.length);
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    if (i >= window) sum -= values[i - window];
    out[i] = sum / Math.min(i + 1, window);
  }
  return out;
}

/**
 * One worker's buckets, sorted by index. Bucket messages carry a bucket's whole state,
 * so applying one twice changes nothing.
 */
export class Curve {
  constructor() {
    this.level = 0;
    /** @type {number[]} */ this.index = [];
    /** @type {number[]} */ this.count = [];
    /** @type {number[]} */ this.ep = []; // last episode of each bucket: the x of its point
    /** @type {number[]} */ this.min = [];
    /** @type {number[]} */ this.max = [];
    /** @type {number[]} */ this.mean = [];
    /** @type {number[]} */ this.roll = [];
    /** @type {number[]} */ this.length = [];
  }

  /** How many episodes one point stands for at most. */
  get bucketSize() {
    return 2 ** this.level;
  }

  /** Episodes covered. */
  get episodes() {
    return this.count.reduce((a, b) => a + b, 0);
  }

  /**
   * Apply one curve message: "ok", or "gap" when it is at a lower level than ours (a view
   * that missed something asks for a snapshot). At a higher level our buckets merge first,
   * pairwise as the kernel's did, so only changed buckets need to travel.
   * @param {{level: number, reset: boolean}} msg
   * @param {Record<string, ArrayLike<number>>} data
   * @returns {"ok" | "gap"}
   */
  apply(msg, data) {
    if (msg.reset) {
      this.level = msg.level;
      this.index = Array.from(data.last_ep, (ep) => ep >> msg.level);
      this.count = Array.from(data.count);
      this.ep = Array.from(data.last_ep);
      this.min = Array.from(data.r_min);
      this.max = Array.from(data.r_max);
      this.mean = Array.from(data.r_mean);
      this.roll = Array.from(data.roll);
      this.length = Array.from(data.len_mean);
      return "ok";
    }
    if (msg.level < this.level) return "gap";
    if (msg.level > this.level) this.mergeTo(msg.level);
    for (let i = 0; i < data.last_ep.length; i++) {
      const k = data.last_ep[i] >> msg.level;
      let at = this.index.length;
      if (at > 0 && this.index[at - 1] >= k) at = lowerBound(this.index, k);
      const row = [data.count[i], data.last_ep[i], data.r_min[i], data.r_max[i], data.r_mean[i], data.roll[i], data.len_mean[i]];
      const cols = [this.count, this.ep, this.min, this.max, this.mean, this.roll, this.length];
      if (this.index[at] === k) cols.forEach((c, j) => { c[at] = row[j]; });
      else {
        this.index.splice(at, 0, k);
        cols.forEach((c, j) => { c.splice(at, 0, row[j]); });
      }
    }
    return "ok";
  }

  /**
   * Merge to a coarser level: buckets whose indexes share `index >> (level - this.level)`
   * become one (count and sums add, min / max of both, the later bucket's last episode and
   * mean of 20). Exact, as the kernel's merge.
   * @param {number} level
   */
  mergeTo(level) {
    const shift = level - this.level;
    const out = new Curve();
    out.level = level;
    for (let i = 0; i < this.index.length; i++) {
      const k = this.index[i] >> shift;
      const j = out.index.length - 1;
      if (j >= 0 && out.index[j] === k) {
        const c = out.count[j] + this.count[i];
        out.mean[j] = (out.mean[j] * out.count[j] + this.mean[i] * this.count[i]) / c;
        out.length[j] = (out.length[j] * out.count[j] + this.length[i] * this.count[i]) / c;
        out.count[j] = c;
        out.min[j] = Math.min(out.min[j], this.min[i]);
        out.max[j] = Math.max(out.max[j], this.max[i]);
        if (this.ep[i] >= out.ep[j]) { out.ep[j] = this.ep[i]; out.roll[j] = this.roll[i]; }
        // float32 means: keep rounding from putting a mean outside its own envelope
        out.mean[j] = Math.min(out.max[j], Math.max(out.min[j], out.mean[j]));
      } else {
        out.index.push(k); out.count.push(this.count[i]); out.ep.push(this.ep[i]);
        out.min.push(this.min[i]); out.max.push(this.max[i]); out.mean.push(this.mean[i]);
        out.roll.push(this.roll[i]); out.length.push(this.length[i]);
      }
    }
    Object.assign(this, out);
  }

  /** The mean of the last 20 episodes at the newest one, or null. */
  lastRoll() {
    return this.roll.length ? this.roll[this.roll.length - 1] : null;
  }
}

/**
 * All workers on a shared episode axis: per bin the mean and standard deviation across
 * workers of each worker's mean of the last 20 episodes, taken at its last bucket ending at
 * or before the bin's edge (a worker counts in a bin once it got there).
 * @param {Array<{ep: ArrayLike<number>, roll: ArrayLike<number>}>} curves
 * @param {{bins?: number}} [options]
 */
export function overviewBand(curves, options = {}) {
  const bins = options.bins ?? 200;
  const live = curves.filter((c) => c.ep.length > 0);
  /** @type {Array<Array<number | null>>} */
  const perWorker = curves.map(() => []);
  if (live.length === 0) return { x: [], mean: [], lo: [], hi: [], n: [], perWorker };
  let maxEp = 0;
  for (const c of live) maxEp = Math.max(maxEp, c.ep[c.ep.length - 1]);
  const width = Math.max(1, Math.ceil((maxEp + 1) / bins));
  const count = Math.ceil((maxEp + 1) / width);
  const x = [], mean = [], lo = [], hi = [], n = [];
  for (let b = 0; b < count; b++) {
    const edge = (b + 1) * width - 1;
    const vals = [];
    /** @type {Array<number | null>} */
    const row = [];
    for (const c of curves) {
      const i = upperBound(c.ep, edge) - 1;
      // a NaN mean (NaN returns) leaves the bin: one would make the bin's mean and band NaN
      const ok = i >= 0 && c.ep.length > 0 && c.ep[c.ep.length - 1] >= b * width && Number.isFinite(c.roll[i]);
      row.push(ok ? c.roll[i] : null);
      if (ok) vals.push(c.roll[i]);
    }
    if (vals.length === 0) continue;
    row.forEach((v, k) => perWorker[k].push(v));
    const m = vals.reduce((a, v) => a + v, 0) / vals.length;
    const sd = Math.sqrt(vals.reduce((a, v) => a + (v - m) ** 2, 0) / vals.length);
    // ±sd clipped to what the workers' means spanned: a band never leaves the data
    x.push(Math.min(edge, maxEp));
    mean.push(m);
    lo.push(Math.max(m - sd, Math.min(...vals)));
    hi.push(Math.min(m + sd, Math.max(...vals)));
    n.push(vals.length);
  }
  return { x, mean, lo, hi, n, perWorker };
}

/**
 * Y-limits that a few extreme episodes cannot flatten: the full range of the values, unless
 * it is more than `squash` times the 5th–95th percentile range (−700 on the cliff's first
 * episodes against −46…−20 later); then the percentile range, never cutting the newest
 * `keep` values of each column. Widened by 5 %.
 * @param {Array<ArrayLike<number | null>>} columns
 * @param {{keep?: number, squash?: number}} [options]
 * @returns {[number, number] | null}
 */
export function robustRange(columns, options = {}) {
  const keep = options.keep ?? 5;
  const squash = options.squash ?? 3;
  /** @type {number[]} */
  const all = [];
  /** @type {number[]} */
  const tail = [];
  for (const col of columns) {
    for (let i = 0; i < col.length; i++) {
      const v = col[i];
      if (v === null || v === undefined || !Number.isFinite(v)) continue;
      all.push(v);
      if (i >= col.length - keep) tail.push(v);
    }
  }
  if (all.length === 0) return null;
  all.sort((a, b) => a - b);
  const q = (/** @type {number} */ p) => all[Math.min(all.length - 1, Math.max(0, Math.round(p * (all.length - 1))))];
  let lo = all[0], hi = all[all.length - 1];
  const qlo = q(0.05), qhi = q(0.95);
  if (hi - lo > squash * (qhi - qlo)) {
    lo = qlo;
    hi = qhi;
    for (const v of tail) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  if (hi === lo) { const pad = Math.abs(hi) * 0.1 || 0.5; return [lo - pad, hi + pad]; }
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

/** @param {ArrayLike<number>} arr @param {number} value first index with arr[i] > value */
function upperBound(arr, value) {
  let lo = 0, hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid] <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** @param {ArrayLike<number>} arr @param {number} value first index with arr[i] >= value */
function lowerBound(arr, value) {
  let lo = 0, hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
