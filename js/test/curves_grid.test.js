import { describe, expect, it } from "vitest";
import { ansiToHtml } from "../src/ansi.js";
import { Curve, overviewBand, rollingMean } from "../src/curves.js";
import { gridCells, startPosition, taxiDecode } from "../src/grid.js";

describe("curves", () => {
  it("rolling mean uses the points seen so far at the start", () => {
    expect(Array.from(rollingMean([1, 2, 3, 4], 2))).toEqual([1, 1.5, 2.5, 3.5]);
  });

  it("upserts buckets by index, replaces on reset and reports a level it does not have", () => {
    const c = new Curve();
    const pts = (index, level = 0) => ({
      index, count: index.map(() => 1), last_ep: index.map((k) => (k + 1) * 2 ** level - 1),
      r_min: index.map((k) => k), r_max: index.map((k) => k), r_mean: index.map((k) => k),
      roll: index.map((k) => k / 2), len_mean: index.map(() => 3),
    });
    expect(c.apply({ level: 0, reset: true }, pts([0, 1]))).toBe("ok");
    expect(c.apply({ level: 0, reset: false }, pts([1, 2, 3]))).toBe("ok");
    expect(c.apply({ level: 0, reset: false }, pts([5]))).toBe("ok"); // a gap in episodes is fine
    expect(c.apply({ level: 0, reset: false }, pts([4]))).toBe("ok"); // out of order lands in order
    expect(c.index).toEqual([0, 1, 2, 3, 4, 5]);
    expect(c.ep).toEqual([0, 1, 2, 3, 4, 5]);
    expect(c.apply({ level: 1, reset: true }, pts([0, 1], 1))).toBe("ok");
    expect(c.apply({ level: 0, reset: false }, pts([0]))).toBe("gap");
    expect(c.ep).toEqual([1, 3]);
    expect(c.bucketSize).toBe(2);
    expect(c.lastRoll()).toBe(0.5);
  });

  it("overview band is the mean and sd across workers", () => {
    const a = { ep: [0, 1, 2, 3], roll: [0, 0, 0, 0] };
    const b = { ep: [0, 1, 2, 3], roll: [2, 2, 2, 2] };
    const band = overviewBand([a, b], { bins: 4 });
    expect(band.x).toEqual([0, 1, 2, 3]);
    expect(band.mean).toEqual([1, 1, 1, 1]);
    expect(band.lo).toEqual([0, 0, 0, 0]);
    expect(band.hi).toEqual([2, 2, 2, 2]);
    expect(band.perWorker).toEqual([[0, 0, 0, 0], [2, 2, 2, 2]]);
  });

  it("the ±sd band is clipped to the workers' range", () => {
    const band = overviewBand([{ ep: [0], roll: [0] }, { ep: [0], roll: [0] }, { ep: [0], roll: [1] }], { bins: 1 });
    expect(band.lo[0]).toBe(0); // mean 1/3, sd 0.47: unclipped it would go below 0
    expect(band.hi[0]).toBeCloseTo(1 / 3 + Math.sqrt(2) / 3, 12);
  });

  it("a worker whose mean is not a number leaves that bin instead of blanking it", () => {
    const a = { ep: [0, 1], roll: [NaN, 1] };
    const b = { ep: [0, 1], roll: [3, 3] };
    const band = overviewBand([a, b], { bins: 2 });
    expect(band.mean).toEqual([3, 2]);
    expect(band.n).toEqual([1, 2]);
    expect([...band.lo, ...band.hi].every(Number.isFinite)).toBe(true);
    expect(band.perWorker[0]).toEqual([null, 1]); // a gap in its own line, not NaN
  });

  it("a worker that stopped early leaves the band", () => {
    const a = { ep: [0, 1], roll: [1, 1] };
    const b = { ep: [0, 1, 2, 3, 4, 5], roll: [3, 3, 3, 3, 3, 3] };
    const band = overviewBand([a, b], { bins: 6 });
    expect(band.n).toEqual([2, 2, 1, 1, 1, 1]);
    expect(band.perWorker[0].slice(2)).toEqual([null, null, null, null]);
  });
});

describe("grid", () => {
  const lake = { kind: "frozenlake", rows: ["SFFF", "FHFH", "FFFH", "HFFG"] };

  it("places the agent at row pos/ncols, column pos%ncols", () => {
    const cells = gridCells(lake, 5);
    expect(cells[1][1]).toMatchObject({ ch: "H", cls: "hole", agent: true });
    expect(cells.flat().filter((c) => c.agent)).toHaveLength(1);
    expect(startPosition(lake)).toBe(0);
  });

  it("decodes Taxi states like gymnasium", () => {
    // gymnasium: env.decode(328) == (3, 1, 2, 0)
    expect(taxiDecode(328)).toEqual({ row: 3, col: 1, passenger: 2, destination: 0 });
    expect(() => taxiDecode(500)).toThrow(RangeError);
  });

  it("draws Taxi with walls, passenger and destination", () => {
    const taxi = { kind: "taxi", rows: ["+---------+", "|R: | : :G|", "| : | : : |", "| : : : : |", "| | : | : |", "|Y| : |B: |", "+---------+"] };
    const cells = gridCells(taxi, 328);
    expect(cells).toHaveLength(5);
    expect(cells[3][1].agent).toBe(true);
    expect(cells[0][0].cls).toContain("destination"); // R
    expect(cells[4][0].cls).toContain("passenger"); // Y
    expect(cells[0][1].wallRight).toBe(true); // "R: |"
    expect(cells[4][0].wallRight).toBe(true); // "|Y|"
  });

  it("escape codes other than colours are dropped wherever they are", () => {
    expect(ansiToHtml("\x1b[2J\x1b[Ha\x1b[31mb\x1b[0m\x1b[?25lc")).toBe('a<span class="nbt-ansi-hl">b</span>c');
  });

  it("ansi frames are escaped and highlighted", () => {
    const html = ansiToHtml("\n\x1b[41mS\x1b[0mF<H\n");
    expect(html).toBe('\n<span class="nbt-ansi-hl">S</span>F&lt;H\n');
  });
});
