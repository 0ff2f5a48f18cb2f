// Progress of a run as a person reads it: "39 / 300 episodes · ETA 12 s", failures with
// their first error line. Pure functions, tested without a DOM.


/** @param {number} seconds */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const total = Math.round(seconds);
  const m = Math.floor(total / 60), s = total % 60;
  if (m < 60) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** @param {any} text */
export function firstLine(text) {
  return String(text ?? "").split("\n").map((l) => l.trim()).find((l) => l) ?? "";
}

/**
 * Episodes per second over the last `windowMs`, from samples of (time, episodes done).
 */
export class RateMeter {
  /** @param {number} [windowMs] */
  constructor(windowMs = 10_000) {
    this.windowMs = windowMs;
    /** @type {Array<[number, number]>} */
    this.samples = [];
  }

  /** @param {number} now ms @param {number} done */
  add(now, done) {
    const last = this.samples.at(-1);
    if (last && done < last[1]) this.samples = []; // a restart: start over
    if (!last || last[1] !== done || now - last[0] > 1000) this.samples.push([now, done]);
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift();
  }

  /** episodes per second, or null when not measurable yet */
  rate() {
    if (this.samples.length < 2) return null;
    const [t0, d0] = this.samples[0];
    const [t1, d1] = /** @type {[number, number]} */ (this.samples.at(-1));
    if (t1 - t0 < 200 || d1 <= d0) return null;
    return (d1 - d0) / ((t1 - t0) / 1000);
  }
}

/**
 * The overview's progress across workers.
 * @param {Array<Record<string, any>>} scalars one per worker
 * @param {number | null} rate episodes per second across workers (null: unknown)
 * @param {Set<string>} final the statuses a worker ends with (the kernel's vocab)
 */
export function progressOf(scalars, rate, final) {
  let done = 0, total = 0;
  for (const s of scalars) {
    const t = s.episodes_total ?? 0;
    total += t;
    // a worker that ended early counts as done, so the bar reaches its end
    done += final.has(s.status) ? t : Math.min(s.episodes_done ?? 0, t || Infinity);
  }
  const shown = scalars.reduce((a, s) => a + (s.episodes_done ?? 0), 0);
  const allFinal = scalars.length > 0 && scalars.every((s) => final.has(s.status));
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  let text = total > 0 ? `${shown} / ${total} episodes` : `${shown} episodes`;
  if (!allFinal && rate && total > done) text += ` · ETA ${formatDuration((total - done) / rate)}`;
  return { done: shown, total, fraction, text };
}

/**
 * Failed workers with the first line of their error, for the overview.
 * @param {string[]} ids @param {(wid: string) => Record<string, any>} scalarsOf
 * @param {string} failure the status of a failed worker (the kernel's vocab)
 */
export function failures(ids, scalarsOf, failure) {
  return ids
    .filter((wid) => scalarsOf(wid).status === failure)
    .map((wid) => `${wid} ${failure}: ${firstLine(scalarsOf(wid).error) || `exit code ${scalarsOf(wid).exit_code ?? "?"}`}`);
}
