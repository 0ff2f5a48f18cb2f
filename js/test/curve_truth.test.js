// The live curve tells the truth (issue 15): replayed from real Python messages, at several
// episode rates, every drawn value is an episode's return, a bucket's min/max/mean of real
// episodes, or a mean of exactly the last 20 episodes (pandas' rolling mean); the live
// dashboard and one opened from the store hold the same curve.
import { describe, expect, it } from "vitest";
import { Curve, FIELDS, overviewBand, robustRange } from "../src/curves.js";
import { typedArray } from "../src/protocol.js";
import { DashboardState, vocabulary } from "../src/dashboard_state.js";
import { loadCurveFixture, loadFixture } from "./fake_model.js";

const fx = loadCurveFixture();
const VOCAB = vocabulary(loadFixture().vocab);
const WID = "000001";

/** A view's state after a snapshot with nothing, then every live delta. */
function replay(deltas) {
  const s = new DashboardState(VOCAB);
  s.applySnapshot({ kind: "snapshot", seq: 0, live: true, run_id: "r", env_id: "", worker_ids: [WID], workers: {} }, []);
  for (const d of deltas) expect(s.applyDelta(d.content, d.buffers)).toBe("ok");
  return s.worker(WID).curve;
}

function fromStore() {
  const s = new DashboardState(VOCAB);
  const curve = fx.store.content.curve;
  s.applySnapshot({ kind: "snapshot", seq: 0, live: false, run_id: "r", env_id: "", worker_ids: [WID], workers: { [WID]: { scalars: {}, curve } } }, fx.store.buffers);
  return s.worker(WID).curve;
}

/** @param {Curve} c */
function checkTruth(c) {
  const returns = fx.returns;
  const size = c.bucketSize;
  expect(c.episodes).toBe(returns.length);
  for (let i = 0; i < c.index.length; i++) {
    const eps = returns.slice(c.index[i] * size, (c.index[i] + 1) * size);
    expect(c.count[i]).toBe(eps.length);
    expect(c.min[i]).toBe(Math.min(...eps));
    expect(c.max[i]).toBe(Math.max(...eps));
    expect(c.mean[i]).toBeCloseTo(eps.reduce((a, b) => a + b, 0) / eps.length, 6); // float32
    expect(c.ep[i]).toBe((c.index[i] + 1) * size - 1 < returns.length ? (c.index[i] + 1) * size - 1 : returns.length - 1);
    // "mean of 20" is over the last 20 episodes, as pandas computes it
    expect(c.roll[i]).toBeCloseTo(fx.rolling20[c.ep[i]], 10);
    // nothing drawn outside what the bucket's episodes had
    for (const v of [c.mean[i], c.roll[i]]) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    expect(c.min[i]).toBeLessThanOrEqual(c.mean[i]);
    expect(c.mean[i]).toBeLessThanOrEqual(c.max[i]);
  }
  const lengths = fx.lengths;
  for (let i = 0; i < c.index.length; i++) {
    const ls = lengths.slice(c.index[i] * size, (c.index[i] + 1) * size);
    expect(c.length[i]).toBeCloseTo(ls.reduce((a, b) => a + b, 0) / ls.length, 4);
  }
}

describe("live curve truth", () => {
  for (const rate of Object.keys(fx.live)) {
    it(`at ${rate} episodes per tick every point is a real episode statistic`, () => {
      const c = replay(fx.live[rate]);
      expect(c.level).toBe(1); // 800 episodes in at most 512 buckets
      checkTruth(c);
      expect(c.lastRoll()).toBeCloseTo(fx.rolling20.at(-1), 10);
    });

    it(`at ${rate} episodes per tick the live curve equals the one rebuilt from the store`, () => {
      const live = replay(fx.live[rate]);
      const stored = fromStore();
      for (const k of ["index", "count", "ep", "min", "max", "mean", "roll", "length"]) {
        expect(live[k].length).toBe(stored[k].length);
        const digits = k === "mean" || k === "length" ? 6 : 10; // float32 on the wire
        live[k].forEach((v, i) => expect(v).toBeCloseTo(stored[k][i], digits));
      }
    });
  }

  it("the store snapshot holds the truth too", () => checkTruth(fromStore()));

  it("replaying deltas again changes nothing (buckets are idempotent)", () => {
    const deltas = fx.live["60"];
    const c = replay(deltas);
    const before = JSON.stringify(c);
    for (const d of deltas.slice(-3)) {
      const ref = d.content.workers[WID].curve;
      const data = Object.fromEntries(FIELDS.map((n) => [n, typedArray(d.buffers, ref[n])]));
      expect(c.apply({ ...ref, reset: false }, data)).toBe("ok");
    }
    expect(JSON.stringify(c)).toBe(before);
  });

  it("a delta at a lower level than the view holds asks for a resync", () => {
    const c = new Curve();
    const none = Object.fromEntries(FIELDS.map((n) => [n, []]));
    expect(c.apply({ level: 2, reset: true }, none)).toBe("ok");
    expect(c.apply({ level: 1, reset: false }, none)).toBe("gap");
  });

  it("at a higher level the view merges its buckets exactly as the store would bucket them", () => {
    const live = replay(fx.live["7"].filter((d) => d.content.workers[WID]?.curve?.level === 0));
    expect(live.level).toBe(0);
    live.mergeTo(1);
    const returns = fx.returns.slice(0, live.ep.at(-1) + 1);
    for (let i = 0; i < live.index.length; i++) {
      const eps = returns.slice(live.index[i] * 2, live.index[i] * 2 + 2);
      expect(live.count[i]).toBe(eps.length);
      expect(live.mean[i]).toBeCloseTo(eps.reduce((a, b) => a + b, 0) / eps.length, 6);
      expect(live.min[i]).toBe(Math.min(...eps));
      expect(live.roll[i]).toBeCloseTo(fx.rolling20[live.ep[i]], 10);
    }
  });

  it("past the first merge, deltas carry only changed buckets, not the whole curve again", () => {
    const sizes = fx.live["60"].map((d) => d.content.workers[WID].curve.n);
    expect(Math.max(...sizes.slice(1))).toBeLessThan(64);
  });

  it("the overview band stays inside the workers' own means of 20", () => {
    const a = replay(fx.live["7"]);
    const b = fromStore();
    const band = overviewBand([a, b]);
    for (let i = 0; i < band.x.length; i++) {
      expect(band.lo[i]).toBeLessThanOrEqual(band.mean[i] + 1e-12);
      expect(band.hi[i]).toBeGreaterThanOrEqual(band.mean[i] - 1e-12);
      const vals = band.perWorker.map((p) => p[i]).filter((v) => v !== null);
      expect(band.lo[i]).toBeGreaterThanOrEqual(Math.min(...vals) - 1e-12);
      expect(band.hi[i]).toBeLessThanOrEqual(Math.max(...vals) + 1e-12);
    }
  });
});

describe("robust y-limits", () => {
  it("a few very bad early episodes do not flatten the rest", () => {
    const cliff = [-700, -650, -400, ...Array.from({ length: 97 }, (_, i) => -46 + (i % 27))];
    const [lo, hi] = /** @type {[number, number]} */ (robustRange([cliff]));
    expect(lo).toBeGreaterThan(-100);
    expect(hi).toBeLessThan(0);
  });

  it("always keeps the newest values on screen", () => {
    const vals = [...Array.from({ length: 100 }, () => 0), 50];
    const [lo, hi] = /** @type {[number, number]} */ (robustRange([vals]));
    expect(hi).toBeGreaterThanOrEqual(50);
    expect(lo).toBeLessThanOrEqual(0);
  });

  it("a bounded return (0 or 1) keeps its whole range: nothing real is cut off", () => {
    const lake = Array.from({ length: 200 }, (_, i) => (i % 7 === 0 ? 0 : i % 3 === 0 ? 0.5 : 1));
    const [lo, hi] = /** @type {[number, number]} */ (robustRange([lake]));
    expect(lo).toBeLessThan(0);
    expect(hi).toBeGreaterThan(1);
  });

  it("gives a visible range for a flat line and null without data", () => {
    expect(robustRange([[1, 1, 1]])).toEqual([0.9, 1.1]);
    expect(robustRange([[]])).toBeNull();
  });
});
