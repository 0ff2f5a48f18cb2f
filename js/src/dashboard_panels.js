// The dashboard's panels: one per worker and the "All workers" overview. Every number
// drawn is an episode's return, a bucket's min / max / mean (said so), or a mean of the
// last 20 episodes computed by the kernel (see curves.js).

import { ansiToHtml } from "./ansi.js";
import { createChart, formatNumber, workerColour } from "./chart.js";
import { overviewBand, robustRange } from "./curves.js";
import { renderGrid } from "./grid.js";
import { RateMeter, failures, progressOf } from "./progress.js";
import { h } from "./protocol.js";

/** @typedef {import("./dashboard_state.js").WorkerState} WorkerState */
/** @typedef {import("./dashboard_state.js").DashboardState} DashboardState */
/** @typedef {import("./dashboard_state.js").Vocab} Vocab */
/** @typedef {(wid: string | null, out: HTMLElement, btn: HTMLButtonElement) => void} OnStop */

/** @param {Record<string, any>} s @param {string} initial the status of a worker not heard from yet */
export function statusLine(s, initial) {
  const parts = [s.status ?? initial];
  if (s.pid !== null && s.pid !== undefined) parts.push(`pid ${s.pid}`);
  if (s.exit_code !== null && s.exit_code !== undefined) parts.push(`exit code ${s.exit_code}`);
  return parts.join(" · ");
}

/**
 * What one point of a worker's return chart stands for, said on the chart.
 * @param {number} size episodes per point @param {number} rolling the rolling-mean window
 */
export function bucketCaption(size, rolling) {
  return size <= 1
    ? `Return per episode (dots) and mean of the last ${rolling} episodes`
    : `Return per ${size} episodes: mean (line), min–max (band); and mean of the last ${rolling} episodes`;
}

/** @param {HTMLElement} parent @param {number} fraction */
function progressBar(parent, fraction) {
  let bar = /** @type {HTMLProgressElement | null} */ (parent.querySelector("progress"));
  if (!bar) {
    bar = document.createElement("progress");
    bar.className = "nbt-progress";
    bar.max = 1;
    parent.prepend(bar);
  }
  bar.value = fraction;
}

/**
 * One worker's tab. The state keeps this worker's object for the life of the view (a
 * snapshot resets it in place), so the panel may hold it.
 * @param {DashboardState} state @param {string} wid @param {string} colour @param {OnStop} onStop
 */
export function workerPanel(state, wid, colour, onStop) {
  const w = state.worker(wid);
  const vocab = state.vocab;
  const ROLLING = vocab.rolling;
  const root = h("div", "nbt-panel");
  root.style.setProperty("--nbt-worker", colour);
  const head = h("div", "nbt-panel-head");
  const status = h("span", "nbt-status");
  const stop = /** @type {HTMLButtonElement} */ (h("button", "nbt-stop", "Stop"));
  stop.type = "button";
  const stopOut = h("span", "nbt-stop-out");
  stop.addEventListener("click", () => onStop(wid, stopOut, stop));
  head.append(h("span", "nbt-swatch"), status, stop, stopOut);
  const progress = h("div", "nbt-progress-line");
  const failure = h("div", "nbt-failure");
  const stats = h("dl", "nbt-stats");
  const charts = h("div", "nbt-charts");
  const lower = h("div", "nbt-lower");
  const env = h("div", "nbt-env");
  const table = h("table", "nbt-recent");
  lower.append(env, table);
  root.append(head, progress, failure, stats, charts, lower);
  /** @type {ReturnType<typeof createChart> | null} */
  let ret = null;
  let retLevel = -1;
  const len = createChart(charts, { title: "Episode length", yLabel: "steps", series: [{ label: "length", stroke: colour }] });
  let shownData = -1;
  let shownEnv = -1;
  /** @type {string | null} the shown rgb frame's object URL: revoked once nothing shows it */
  let frameUrl = null;
  function drawEnv() {
    const url = renderEnv(env, w, state);
    if (frameUrl && frameUrl !== url) URL.revokeObjectURL(frameUrl);
    frameUrl = url;
  }
  function returnChart() {
    const size = w.curve.bucketSize;
    ret?.destroy();
    const one = size <= 1;
    ret = createChart(charts, {
      title: bucketCaption(size, ROLLING), yLabel: "return",
      series: [
        { label: "min", stroke: "transparent" },
        { label: "max", stroke: "transparent" },
        // episodes (or their bucket means) faint, so the mean of 20 in the worker's colour reads first
        { label: one ? "return" : `mean of ${size}`, stroke: "var(--nbt-faint, #9ab)", points: one, width: one ? 0 : 1 },
        { label: `mean of last ${ROLLING}`, stroke: colour, width: 2 },
      ],
      bands: one ? [] : [{ series: [2, 1], fill: "rgba(127,127,127,0.18)" }],
    });
    charts.prepend(ret.element);
    retLevel = w.curve.level;
  }
  return {
    root,
    worker: w,
    update() {
      const s = w.scalars;
      const final = vocab.final.has(s.status);
      status.textContent = statusLine(s, vocab.initial);
      status.className = `nbt-status nbt-status-${s.status ?? vocab.initial}`;
      stop.disabled = final || stop.dataset.busy === "1";
      failure.replaceChildren();
      if (s.status === vocab.failure || s.error) {
        failure.append(h("div", "nbt-error-line", s.error ?? vocab.failure));
        if (s.traceback) failure.append(h("pre", "nbt-traceback", s.traceback));
      }
      if (shownData !== w.dataVersion) {
        shownData = w.dataVersion;
        const total = s.episodes_total ?? 0;
        progressBar(progress, total ? Math.min(1, (final ? total : s.episodes_done ?? 0) / total) : 0);
        stats.replaceChildren();
        for (const [k, v] of [["episodes", `${s.episodes_done ?? 0}${total ? ` / ${total}` : ""}`], ["steps", formatNumber(s.steps_done ?? 0)],
          [final ? "avg steps/s" : "steps/s", formatNumber(s.steps_per_s)], ["ε", formatNumber(s.epsilon)],
          [`mean of last ${ROLLING}`, formatNumber(w.curve.lastRoll())]]) {
          stats.append(h("dt", "", k), h("dd", "", v));
        }
        if (retLevel !== w.curve.level || !ret) returnChart();
        const c = w.curve;
        const r = /** @type {ReturnType<typeof createChart>} */ (ret);
        r.setData([c.ep, c.min, c.max, c.mean, c.roll], robustRange([c.mean, c.roll]));
        len.setData([c.ep, c.length]);
        len.setTitle(c.bucketSize <= 1 ? "Episode length" : `Episode length (mean per ${c.bucketSize} episodes)`);
        renderRecent(table, w.recent);
      }
      if (shownEnv !== w.envVersion) {
        shownEnv = w.envVersion;
        drawEnv();
      }
    },
    destroy() {
      ret?.destroy();
      len.destroy();
      if (frameUrl) URL.revokeObjectURL(frameUrl);
      frameUrl = null;
    },
  };
}

/** @param {HTMLElement} table @param {any[]} recent */
function renderRecent(table, recent) {
  const head = h("tr");
  for (const c of ["episode", "return", "length", "end"]) head.append(h("th", "", c));
  const rows = [...recent].reverse().map((r) => {
    const tr = h("tr");
    const end = r.terminated ? "terminated" : r.truncated ? "truncated" : "";
    for (const v of [r.ep_index, formatNumber(r.total_reward), r.length, end]) tr.append(h("td", "", String(v)));
    return tr;
  });
  table.replaceChildren(head, ...rows);
}

/**
 * What the run does about frames when this worker has none to show.
 * @param {DashboardState} state
 */
function noFrame(state) {
  if (state.frames !== "ansi" && state.frames !== "rgb_array") {
    return "No frames: set telemetry frames to 'ansi' or 'rgb_array' to watch the environment.";
  }
  if (!state.live) return `No frames here: the run's ${state.frames} frames go only to the kernel that runs it.`;
  return `No frame yet: the run sends ${state.frames} frames while it plays.`;
}

/**
 * The worker's environment: its grid, or its last frame.
 * @param {HTMLElement} box @param {WorkerState} w @param {DashboardState} state
 * @returns {string | null} the object URL of the rgb frame now shown (the caller revokes it)
 */
function renderEnv(box, w, state) {
  const frame = w.frame;
  const gridKinds = state.vocab.gridKinds;
  if (w.grid && !gridKinds.includes(w.grid.kind)) {
    box.replaceChildren(h("div", "nbt-muted", `No drawing for grid kind ${w.grid.kind} (drawn: ${gridKinds.join(", ")}).`));
  } else if (w.grid) {
    renderGrid(box, w.grid, w.position);
  } else if (frame?.kind === "ansi") {
    const pre = h("pre", "nbt-ansi");
    pre.innerHTML = ansiToHtml(frame.text ?? "");
    box.replaceChildren(pre);
  } else if (frame?.png) {
    const img = /** @type {HTMLImageElement} */ (h("img", "nbt-frame"));
    img.alt = `frame ${frame.ep_index}:${frame.step_index}`;
    const url = URL.createObjectURL(new Blob([frame.png], { type: "image/png" }));
    img.src = url;
    box.replaceChildren(img);
    return url;
  } else {
    box.replaceChildren(h("div", "nbt-muted", noFrame(state)));
  }
  return null;
}

/** @param {string} wid @param {string} colour */
function workerCell(wid, colour) {
  const td = h("td", "nbt-worker-cell");
  const sw = h("span", "nbt-swatch");
  sw.style.background = colour;
  td.append(sw, document.createTextNode(wid));
  return td;
}

/** The "All workers" panel. @param {DashboardState} state @param {OnStop} onStop */
export function overviewPanel(state, onStop) {
  const ROLLING = state.vocab.rolling;
  const root = h("div", "nbt-panel");
  const head = h("div", "nbt-panel-head");
  const stop = /** @type {HTMLButtonElement} */ (h("button", "nbt-stop", "Stop all"));
  stop.type = "button";
  const stopOut = h("span", "nbt-stop-out");
  stop.addEventListener("click", () => onStop(null, stopOut, stop));
  const summary = h("span", "nbt-status");
  head.append(summary, stop, stopOut);
  const progress = h("div", "nbt-progress-line");
  const progressText = h("span", "nbt-progress-text");
  progress.append(progressText);
  const failed = h("ul", "nbt-failures");
  const charts = h("div", "nbt-charts");
  const caption = h("div", "nbt-caption");
  const table = h("table", "nbt-summary");
  root.append(head, progress, failed, charts, caption, table);
  const ids = [...state.workerIds];
  const meter = new RateMeter();
  const chart = createChart(charts, {
    title: `Return: mean of the last ${ROLLING} episodes, all workers`, yLabel: "return", height: 260,
    series: [
      { label: "mean across workers", stroke: "var(--nbt-fg, #333)", width: 2.5 },
      { label: "−sd", stroke: "transparent" },
      { label: "+sd", stroke: "transparent" },
      ...ids.map((wid) => ({ label: wid, stroke: workerColour(state.colours, wid), width: 1 })),
    ],
    bands: [{ series: [3, 2], fill: "rgba(127,127,127,0.18)" }],
  });
  return {
    root,
    ids,
    update() {
      const scalars = ids.map((wid) => state.worker(wid).scalars);
      const counts = /** @type {Record<string, number>} */ ({});
      for (const wid of ids) counts[state.statusOf(wid)] = (counts[state.statusOf(wid)] ?? 0) + 1;
      summary.textContent = Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(" · ");
      const final = state.allFinal();
      stop.disabled = final || stop.dataset.busy === "1";
      meter.add(performance.now(), scalars.reduce((a, s) => a + (s.episodes_done ?? 0), 0));
      const p = progressOf(scalars, meter.rate(), state.vocab.final);
      progressBar(progress, p.fraction);
      progressText.textContent = state.outcome ? `${p.text} · ${state.outcome}` : p.text;
      progress.classList.toggle("nbt-failed", scalars.some((s) => s.status === state.vocab.failure));
      failed.replaceChildren(...failures(ids, (wid) => state.worker(wid).scalars, state.vocab.failure).map((t) => h("li", "nbt-error-line", t)));
      const curves = ids.map((wid) => state.worker(wid).curve);
      const band = overviewBand(curves);
      chart.setData([band.x, band.mean, band.lo, band.hi, ...band.perWorker], robustRange([band.mean, ...band.perWorker]));
      const sizes = [...new Set(curves.filter((c) => c.ep.length).map((c) => c.bucketSize))];
      caption.textContent = ids.length > 1
        ? `Thick line: mean across workers of each worker's mean of its last ${ROLLING} episodes; band: ±1 sd, clipped to the workers' range.`
          + (sizes.some((s) => s > 1) ? ` Sampled every ${Math.max(...sizes)} episodes.` : "")
        : "";
      table.replaceChildren(...(final ? closureRows(state, ids) : liveRows(state, ids)));
    },
    destroy() { chart.destroy(); },
  };
}

/** @param {DashboardState} state @param {string[]} ids */
function liveRows(state, ids) {
  const ROLLING = state.vocab.rolling;
  const head = h("tr");
  for (const c of ["worker", "status", "episodes", "steps", "steps/s", "ε", `mean of last ${ROLLING}`, "last return"]) head.append(h("th", "", c));
  const rows = ids.map((wid) => {
    const w = state.worker(wid);
    const s = w.scalars;
    const last = w.recent.length ? w.recent[w.recent.length - 1].total_reward : null;
    const tr = h("tr");
    tr.append(workerCell(wid, workerColour(state.colours, wid)));
    for (const v of [state.statusOf(wid), s.episodes_done ?? 0, formatNumber(s.steps_done ?? 0), formatNumber(s.steps_per_s), formatNumber(s.epsilon), formatNumber(w.curve.lastRoll()), formatNumber(last)]) {
      tr.append(h("td", "", String(v)));
    }
    return tr;
  });
  return [head, ...rows];
}

/**
 * The closure summary once every worker has ended: per worker its status, exit code,
 * episodes, steps, mean and last-100 return (as run.summary() defines them).
 * @param {DashboardState} state @param {string[]} ids
 */
export function closureRows(state, ids) {
  const ROLLING = state.vocab.rolling;
  const caption = h("caption", "nbt-closure-caption", `Run ended${state.outcome ? `: ${state.outcome}` : ""}`);
  const head = h("tr");
  for (const c of ["worker", "status", "exit code", "episodes", "steps", "avg steps/s", "mean return", `mean of last ${ROLLING}`, "last-100 return"]) head.append(h("th", "", c));
  const rows = ids.map((wid) => {
    const w = state.worker(wid);
    const s = w.scalars;
    const tr = h("tr", `nbt-closure-row nbt-row-${state.statusOf(wid)}`);
    tr.append(workerCell(wid, workerColour(state.colours, wid)));
    for (const v of [state.statusOf(wid), s.exit_code ?? "–", s.episodes_done ?? 0, formatNumber(s.steps_done ?? 0), formatNumber(s.steps_per_s), formatNumber(s.mean_return), formatNumber(w.curve.lastRoll()), formatNumber(s.last100_return)]) {
      tr.append(h("td", "", String(v)));
    }
    return tr;
  });
  return [caption, head, ...rows];
}
