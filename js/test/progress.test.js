import { describe, expect, it } from "vitest";
import { RateMeter, failures, firstLine, formatDuration, progressOf } from "../src/progress.js";
import { loadFixture } from "./fake_model.js";

const FINAL = new Set(loadFixture().vocab.final); // as the kernel sends it

describe("progress", () => {
  it("reads n / total with an ETA while the run goes, and no ETA once it ended", () => {
    const running = [
      { status: "running", episodes_done: 30, episodes_total: 100 },
      { status: "running", episodes_done: 9, episodes_total: 200 },
    ];
    const p = progressOf(running, 10, FINAL);
    expect(p.text).toBe("39 / 300 episodes · ETA 26 s");
    expect(p.fraction).toBeCloseTo(39 / 300, 12);
    const ended = running.map((s) => ({ ...s, status: "stopped" }));
    expect(progressOf(ended, 10, FINAL).text).toBe("39 / 300 episodes");
    expect(progressOf(ended, 10, FINAL).fraction).toBe(1); // the bar ends when the workers do
    expect(progressOf(running, null, FINAL).text).toBe("39 / 300 episodes");
  });

  it("measures episodes per second over a window and starts over after a restart", () => {
    const m = new RateMeter(10_000);
    expect(m.rate()).toBeNull();
    m.add(0, 0);
    m.add(1000, 50);
    m.add(2000, 100);
    expect(m.rate()).toBeCloseTo(50, 9);
    m.add(3000, 10); // fewer than before: a restarted run
    expect(m.rate()).toBeNull();
  });

  it("names each failed worker with the first line of its error", () => {
    const s = { a: { status: "failed", error: "\nValueError: boom\n  at x" }, b: { status: "completed" }, c: { status: "failed", exit_code: -9 } };
    expect(failures(["a", "b", "c"], (w) => s[w], "failed")).toEqual(["a failed: ValueError: boom", "c failed: exit code -9"]);
    expect(firstLine(null)).toBe("");
  });

  it("formats durations as a person would", () => {
    expect([2.14, 42.4, 185, 3725].map(formatDuration)).toEqual(["2.1 s", "42 s", "3 min 05 s", "1 h 02 min"]);
  });
});
