import { describe, expect, it } from "vitest";
import { formatNumber, themed } from "../src/chart.js";

describe("themed colours", () => {
  it("passes plain colours through untouched", () => {
    expect(themed("#ff7f0e")).toBe("#ff7f0e");
    expect(themed("rgba(31,119,180,0.15)")).toBe("rgba(31,119,180,0.15)");
    expect(themed(undefined)).toBeUndefined();
  });

  it("turns var() into a draw-time function that never hands the canvas a var()", () => {
    const stroke = themed("var(--nbt-test-colour, #1f77b4)");
    expect(typeof stroke).toBe("function");
    const root = document.createElement("div");
    root.style.setProperty("--nbt-test-colour", "rgb(10, 20, 30)");
    document.body.append(root);
    const colour = /** @type {(u: {root: HTMLElement}) => string} */ (stroke)({ root });
    expect(colour).not.toContain("var(");
    // Either the DOM resolved the variable, or the declared fallback is used.
    expect(["rgb(10, 20, 30)", "#1f77b4"]).toContain(colour);
    // One probe per chart, reused on every redraw.
    /** @type {any} */ (stroke)({ root });
    expect(root.querySelectorAll("span").length).toBe(1);
    root.remove();
  });

  it("keeps a functional fallback colour whole", () => {
    const stroke = /** @type {any} */ (themed("var(--nbt-missing, rgb(1, 2, 3))"));
    const root = document.createElement("div");
    expect(stroke({ root })).toBe("rgb(1, 2, 3)");
  });
});

describe("themed fallbacks", () => {
  it("unwraps nested var() fallbacks down to a colour", () => {
    const root = document.createElement("div");
    const stroke = /** @type {any} */ (themed("var(--nbt-a, var(--nbt-b, #123456))"));
    expect(stroke({ root })).toBe("#123456");
    const none = /** @type {any} */ (themed("var(--nbt-a)"));
    expect(none({ root })).toBe("#888");
  });
});

describe("formatNumber", () => {
  it("formats numbers to three significant digits, integers as they are", () => {
    expect(formatNumber(12)).toBe("12");
    expect(formatNumber(0.66666)).toBe("0.667");
    expect(formatNumber(812.54)).toBe("812.5");
  });

  it("never throws on what JSON brought instead of a number", () => {
    // jupyter_client sends NaN and ±inf as the strings "nan", "inf", "-inf"
    expect(formatNumber("nan")).toBe("nan");
    expect(formatNumber("-inf")).toBe("-inf");
    expect(formatNumber(null)).toBe("–");
    expect(formatNumber(undefined)).toBe("–");
    expect(formatNumber(NaN)).toBe("–");
    expect(formatNumber(Infinity)).toBe("∞");
    expect(formatNumber(-Infinity)).toBe("−∞");
  });
});
