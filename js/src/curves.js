// Learning-curve arithmetic, kept free of the DOM so it is tested directly.

/**
 * Trailing rolling mean over `window` points (shorter at the start).
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
 * A growable column store for one worker's curve (points as the kernel sent them).
 */
export class Curve {
  constructor() {
    this.epoch = 0;
    this.end = 0; // hub points covered so far
    /** @type {number[]} */ this.ep = [];
    /** @type {number[]} */ this.reward = [];
    /** @type {number[]} */ this.length = [];
  }

  /**
   * Apply one curve message: "ok" (applied), "stale" (already had it), "gap" (need a resync).
   * @param {{epoch: number, start: number, end: number, reset: boolean}} msg
   * @param {{ep: ArrayLike<number>, reward: ArrayLike<number>, length: ArrayLike<number>}} data
   * @returns {"ok" | "stale" | "gap"}
   */
  apply(msg, data) {
    if (msg.reset) {
      this.ep = Array.from(data.ep);
      this.reward = Array.from(data.reward);
      this.length = Array.from(data.length);
    } else if (msg.epoch !== this.epoch || msg.start > this.end) {
      return "gap";
    } else if (msg.end <= this.end) {
      return "stale";
    } else if (msg.start < this.end) {
      return "gap"; // overlapping binned points cannot be split
    } else {
      for (let i = 0; i < data.ep.length; i++) {
        this.ep.push(data.ep[i]);
        this.reward.push(data.reward[i]);
        this.length.push(data.length[i]);
      }
    }
    this.epoch = msg.epoch;
    this.end = msg.end;
    return "ok";
  }
}

/**
 * All workers on a shared episode axis: per bin the mean and standard deviation across
 * workers of each worker's rolling-mean return (a worker counts in a bin once it got there).
 * @param {Array<{ep: ArrayLike<number>, reward: ArrayLike<number>}>} curves
 * @param {{bins?: number, window?: number}} [options]
 */
export function overviewBand(curves, options = {}) {
  const bins = options.bins ?? 200;
  const window = options.window ?? 20;
  const live = curves.filter((c) => c.ep.length > 0);
  /** @type {Array<Array<number | null>>} */
  const perWorker = curves.map(() => []);
  if (live.length === 0) return { x: [], mean: [], lo: [], hi: [], n: [], perWorker };
  let maxEp = 0;
  for (const c of live) maxEp = Math.max(maxEp, c.ep[c.ep.length - 1]);
  const width = Math.max(1, Math.ceil((maxEp + 1) / bins));
  const count = Math.ceil((maxEp + 1) / width);
  const smoothed = curves.map((c) => ({ ep: c.ep, r: rollingMean(c.reward, window) }));
  const x = [], mean = [], lo = [], hi = [], n = [];
  for (let b = 0; b < count; b++) {
    const edge = (b + 1) * width - 1;
    const vals = [];
    /** @type {Array<number | null>} */
    const row = [];
    for (const c of smoothed) {
      // a worker's last point at or before this bin's right edge, once it reached the bin
      const i = upperBound(c.ep, edge) - 1;
      const ok = i >= 0 && c.ep.length > 0 && c.ep[c.ep.length - 1] >= b * width;
      row.push(ok ? c.r[i] : null);
      if (ok) vals.push(c.r[i]);
    }
    if (vals.length === 0) continue;
    row.forEach((v, k) => perWorker[k].push(v));
    const m = vals.reduce((a, v) => a + v, 0) / vals.length;
    const sd = Math.sqrt(vals.reduce((a, v) => a + (v - m) ** 2, 0) / vals.length);
    x.push(Math.min(edge, maxEp));
    mean.push(m);
    lo.push(m - sd);
    hi.push(m + sd);
    n.push(vals.length);
  }
  return { x, mean, lo, hi, n, perWorker };
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
