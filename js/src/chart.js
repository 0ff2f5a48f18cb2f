// A thin uPlot wrapper. Where a canvas cannot be drawn (no 2D context, e.g. a DOM without
// canvas support) the chart keeps its data and shows a one-line text summary instead.

import uPlot from "uplot";
import { formatNumber } from "./format.js";
import { h } from "./protocol.js";

export { formatNumber };

const FALLBACK_COLOUR = "#7f7f7f";

/**
 * A worker's colour as the kernel chose it (nbtrain.widgets.colours: derived from the
 * worker id, so it is the same in every tab, chart and matplotlib plot, and after a reopen).
 * @param {Record<string, string> | undefined} colours @param {string} wid
 */
export function workerColour(colours, wid) {
  return colours?.[wid] ?? FALLBACK_COLOUR;
}

function canvasWorks() {
  try {
    const canvas = document.createElement("canvas");
    return Boolean(canvas.getContext && canvas.getContext("2d"));
  } catch {
    return false;
  }
}

/**
 * A canvas cannot resolve CSS `var()` colours, so a theme colour given as `var(--x, #fallback)`
 * becomes a function uPlot calls at draw time; it reads the computed colour under the chart,
 * so a theme switch shows at the next redraw. Plain colours pass through unchanged.
 *
 * @param {string | undefined} value
 * @returns {string | undefined | ((u: {root: HTMLElement}) => string)}
 */
export function themed(value) {
  if (!value || !value.includes("var(")) return value;
  let fallback = value;
  while (fallback.includes("var(")) {
    // var(--x, FALLBACK): take FALLBACK, itself possibly a var() with its own fallback.
    const inner = /^\s*var\(\s*--[\w-]+\s*,\s*(.*)\)\s*$/.exec(fallback)?.[1];
    fallback = inner === undefined ? "#888" : inner.trim();
  }
  /** @type {HTMLElement | null} */
  let probe = null;
  return (u) => {
    if (!probe || probe.parentNode !== u.root) {
      probe = document.createElement("span");
      probe.style.display = "none";
      probe.style.color = value;
      u.root.append(probe);
    }
    const colour = getComputedStyle(probe).color;
    return colour && !colour.includes("var(") ? colour : fallback;
  };
}

/**
 * @typedef {{label: string, stroke?: string, fill?: string, width?: number, points?: boolean, band?: boolean}} SeriesSpec
 */

/**
 * @param {HTMLElement} parent
 * @param {{title: string, xLabel?: string, yLabel?: string, series: SeriesSpec[], height?: number, bands?: Array<{series: [number, number], fill: string}>}} spec
 */
export function createChart(parent, spec) {
  const box = h("div", "nbt-chart");
  parent.append(box);
  /** @type {[number, number] | null} */
  let yRange = null;
  /** @type {Array<ArrayLike<number | null>>} */
  let data = [[], ...spec.series.map(() => [])];
  /** @type {any} */
  let plot = null;
  const fallback = h("div", "nbt-chart-fallback");
  if (canvasWorks()) {
    const axisStroke = themed("var(--jp-ui-font-color1, #444)");
    plot = new uPlot(
      {
        title: spec.title,
        width: Math.max(300, box.clientWidth || parent.clientWidth || 560),
        height: spec.height ?? 200,
        scales: {
          x: { time: false },
          // robust limits when the caller gives them (see curves.robustRange), else uPlot's
          y: { range: (/** @type {any} */ _u, /** @type {number} */ min, /** @type {number} */ max) => yRange ?? uPlot.rangeNum(min, max, 0.1, true) },
        },
        axes: [
          { label: spec.xLabel ?? "episode", stroke: axisStroke },
          { label: spec.yLabel ?? "", stroke: axisStroke },
        ],
        series: [
          { label: spec.xLabel ?? "episode" },
          ...spec.series.map((s) => ({
            label: s.label,
            stroke: themed(s.stroke),
            fill: s.fill,
            width: s.width ?? 1.5,
            points: { show: s.points ?? false, size: 3 },
          })),
        ],
        bands: spec.bands?.map((b) => ({ series: b.series, fill: b.fill })),
        legend: { show: true },
      },
      /** @type {any} */ (data),
      box,
    );
  } else {
    fallback.textContent = `${spec.title}: no data yet`;
    box.append(fallback);
  }
  box.dataset.points = "0";
  let observer = null;
  if (plot && typeof ResizeObserver !== "undefined") {
    observer = new ResizeObserver(() => {
      const width = box.clientWidth;
      if (width > 0 && Math.abs(width - plot.width) > 4) plot.setSize({ width, height: plot.height });
    });
    observer.observe(box);
  }
  return {
    element: box,
    /**
     * @param {Array<ArrayLike<number | null>>} next
     * @param {[number, number] | null} [range] y-limits (null: fit the data)
     */
    setData(next, range = null) {
      data = next;
      yRange = range;
      box.dataset.ymin = range ? String(range[0]) : "";
      box.dataset.ymax = range ? String(range[1]) : "";
      const n = next[0]?.length ?? 0;
      box.dataset.points = String(n);
      if (plot) plot.setData(next);
      else if (n > 0) {
        const last = spec.series.map((s, i) => `${s.label} ${formatNumber(next[i + 1][n - 1])}`).join(", ");
        fallback.textContent = `${spec.title}: ${n} points; last ${last}`;
      }
    },
    data: () => data,
    /** @param {string} text */
    setTitle(text) {
      const el = box.querySelector(".u-title");
      if (el) el.textContent = text;
      else if (!plot) spec.title = text;
    },
    destroy() {
      observer?.disconnect();
      plot?.destroy();
      box.remove();
    },
  };
}
