// RunDashboard view: one tab per worker plus "All workers". State arrives as a snapshot (on
// render) and then as deltas; see docs/widgets.md for the messages.

import { ansiToHtml } from "./ansi.js";
import { colour, createChart, formatNumber } from "./chart.js";
import { overviewBand, rollingMean } from "./curves.js";
import { DashboardState, FINAL } from "./dashboard_state.js";
import { renderGrid } from "./grid.js";
import { createClient, errorArea, h } from "./protocol.js";

export { DashboardState, FINAL, recentRows } from "./dashboard_state.js";

const ROLLING = 20;
const OVERVIEW = "__all__";

/** @typedef {import("./protocol.js").WidgetModel} WidgetModel */
/** @typedef {import("./dashboard_state.js").WorkerState} WorkerState */

/** @param {Record<string, any>} s */
export function statusLine(s) {
  const parts = [s.status ?? "pending"];
  if (s.pid !== null && s.pid !== undefined) parts.push(`pid ${s.pid}`);
  if (s.exit_code !== null && s.exit_code !== undefined) parts.push(`exit code ${s.exit_code}`);
  return parts.join(" · ");
}

/**
 * One worker's panel.
 * @param {WorkerState} w @param {string} wid @param {(wid: string | null, out: HTMLElement, btn: HTMLButtonElement) => void} onStop
 */
function workerPanel(w, wid, onStop) {
  const root = h("div", "nbt-panel");
  const head = h("div", "nbt-panel-head");
  const status = h("span", "nbt-status");
  const stop = /** @type {HTMLButtonElement} */ (h("button", "nbt-stop", "Stop"));
  stop.type = "button";
  const stopOut = h("span", "nbt-stop-out");
  stop.addEventListener("click", () => onStop(wid, stopOut, stop));
  head.append(status, stop, stopOut);
  const failure = h("div", "nbt-failure");
  const stats = h("dl", "nbt-stats");
  const charts = h("div", "nbt-charts");
  const lower = h("div", "nbt-lower");
  const env = h("div", "nbt-env");
  const table = h("table", "nbt-recent");
  lower.append(env, table);
  root.append(head, failure, stats, charts, lower);
  const ret = createChart(charts, { title: "Return per episode", yLabel: "return", series: [
    { label: "return", stroke: "var(--nbt-faint, #9ab)", points: true, width: 0 },
    { label: `mean of ${ROLLING}`, stroke: "var(--nbt-accent, #1f77b4)", width: 2 },
  ] });
  const len = createChart(charts, { title: "Episode length", yLabel: "steps", series: [{ label: "length", stroke: "#ff7f0e" }] });
  let shownData = -1;
  let shownEnv = -1;
  return {
    root,
    update() {
      const s = w.scalars;
      status.textContent = statusLine(s);
      status.className = `nbt-status nbt-status-${s.status ?? "pending"}`;
      stop.disabled = FINAL.has(s.status) || stop.dataset.busy === "1";
      failure.replaceChildren();
      if (s.status === "failed" || s.error) {
        failure.append(h("div", "nbt-error-line", s.error ?? "failed"));
        if (s.traceback) failure.append(h("pre", "nbt-traceback", s.traceback));
      }
      if (shownData !== w.dataVersion) {
        shownData = w.dataVersion;
        stats.replaceChildren();
        const total = s.episodes_total ? ` / ${s.episodes_total}` : "";
        for (const [k, v] of [["episodes", `${s.episodes_done ?? 0}${total}`], ["steps", formatNumber(s.steps_done ?? 0)],
          ["steps/s", formatNumber(s.steps_per_s)], ["ε", formatNumber(s.epsilon)]]) {
          stats.append(h("dt", "", k), h("dd", "", v));
        }
        const c = w.curve;
        ret.setData([c.ep, c.reward, rollingMean(c.reward, ROLLING)]);
        len.setData([c.ep, c.length]);
        renderRecent(table, w.recent);
      }
      if (shownEnv !== w.envVersion) {
        shownEnv = w.envVersion;
        renderEnv(env, w);
      }
    },
    destroy() { ret.destroy(); len.destroy(); },
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

/** @param {HTMLElement} box @param {WorkerState} w */
function renderEnv(box, w) {
  const frame = w.frame;
  if (w.grid) {
    renderGrid(box, w.grid, w.position);
  } else if (frame?.kind === "ansi") {
    const pre = h("pre", "nbt-ansi");
    pre.innerHTML = ansiToHtml(frame.text ?? "");
    box.replaceChildren(pre);
  } else if (frame?.png) {
    const old = box.querySelector("img");
    if (old?.src.startsWith("blob:")) URL.revokeObjectURL(old.src);
    const img = /** @type {HTMLImageElement} */ (h("img", "nbt-frame"));
    img.alt = `frame ${frame.ep_index}:${frame.step_index}`;
    img.src = URL.createObjectURL(new Blob([frame.png], { type: "image/png" }));
    box.replaceChildren(img);
  } else {
    box.replaceChildren(h("div", "nbt-muted", "No frames: set telemetry frames to 'ansi' or 'rgb_array' to watch the environment."));
  }
}

/** The "All workers" panel. @param {DashboardState} state @param {(wid: string | null, out: HTMLElement, btn: HTMLButtonElement) => void} onStop */
function overviewPanel(state, onStop) {
  const root = h("div", "nbt-panel");
  const head = h("div", "nbt-panel-head");
  const stop = /** @type {HTMLButtonElement} */ (h("button", "nbt-stop", "Stop all"));
  stop.type = "button";
  const stopOut = h("span", "nbt-stop-out");
  stop.addEventListener("click", () => onStop(null, stopOut, stop));
  const summary = h("span", "nbt-status");
  head.append(summary, stop, stopOut);
  const charts = h("div", "nbt-charts");
  const table = h("table", "nbt-summary");
  root.append(head, charts, table);
  const ids = [...state.workerIds];
  const chart = createChart(charts, {
    title: `Return (mean of ${ROLLING}), all workers`, yLabel: "return", height: 260,
    series: [
      { label: "mean", stroke: "var(--nbt-accent, #1f77b4)", width: 2.5 },
      { label: "−sd", stroke: "transparent" },
      { label: "+sd", stroke: "transparent" },
      ...ids.map((wid, i) => ({ label: wid, stroke: colour(i + 1), width: 1 })),
    ],
    bands: [{ series: [3, 2], fill: "rgba(31,119,180,0.15)" }],
  });
  return {
    root,
    ids,
    update() {
      const statuses = ids.map((wid) => state.worker(wid).scalars.status ?? "pending");
      const counts = /** @type {Record<string, number>} */ ({});
      for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
      summary.textContent = Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(" · ");
      stop.disabled = state.allFinal() || stop.dataset.busy === "1";
      const band = overviewBand(ids.map((wid) => ({ ep: state.worker(wid).curve.ep, reward: state.worker(wid).curve.reward })), { window: ROLLING });
      chart.setData([band.x, band.mean, band.lo, band.hi, ...band.perWorker]);
      const head = h("tr");
      for (const c of ["worker", "status", "episodes", "steps", "steps/s", "ε", "last return"]) head.append(h("th", "", c));
      const rows = ids.map((wid) => {
        const w = state.worker(wid);
        const s = w.scalars;
        const last = w.curve.reward.length ? rollingMean(w.curve.reward, ROLLING).at(-1) : null;
        const tr = h("tr");
        for (const v of [wid, s.status ?? "pending", s.episodes_done ?? 0, s.steps_done ?? 0, formatNumber(s.steps_per_s), formatNumber(s.epsilon), formatNumber(last)]) {
          tr.append(h("td", "", String(v)));
        }
        return tr;
      });
      table.replaceChildren(head, ...rows);
    },
    destroy() { chart.destroy(); },
  };
}

/** @param {{model: WidgetModel, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", "nbt-root nbt-dashboard");
  el.append(root);
  const title = h("div", "nbt-title", `Run ${model.get("run_id")}`);
  const cleanupError = errorArea(model, root);
  const tabs = h("div", "nbt-tabs");
  tabs.setAttribute("role", "tablist");
  const body = h("div", "nbt-body", "Loading…");
  root.prepend(title);
  root.append(tabs, body);
  const client = createClient(model);
  const state = new DashboardState();
  /** @type {Map<string, any>} */
  const panels = new Map();
  let active = OVERVIEW;
  let scheduled = false;
  let disposed = false;

  /** @param {string | null} wid @param {HTMLElement} out @param {HTMLButtonElement} btn */
  function onStop(wid, out, btn) {
    btn.dataset.busy = "1";
    btn.disabled = true;
    out.textContent = "stopping…";
    client.request("stop", { worker_id: wid }).then(
      ({ result }) => {
        const st = result?.statuses ?? {};
        out.textContent = wid === null ? `stopped: ${Object.values(st).join(", ")}` : `${wid}: ${st[wid] ?? "stopped"}`;
      },
      (err) => { out.textContent = `stop failed: ${err.message}`; },
    ).finally(() => { btn.dataset.busy = ""; schedule(); });
  }

  function buildTabs() {
    tabs.replaceChildren();
    for (const key of [OVERVIEW, ...state.workerIds]) {
      const tab = /** @type {HTMLButtonElement} */ (h("button", "nbt-tab", key === OVERVIEW ? "All workers" : key));
      tab.type = "button";
      tab.dataset.key = key;
      tab.setAttribute("role", "tab");
      tab.addEventListener("click", () => select(key));
      tabs.append(tab);
    }
  }

  /** @param {string} key */
  function select(key) {
    active = key;
    client.request("focus", { view: client.viewId, worker_id: key === OVERVIEW ? null : key }).catch(() => {});
    schedule();
  }

  function draw() {
    scheduled = false;
    if (disposed || !state.ready) return;
    title.textContent = `Run ${state.runId}${state.envId ? ` · ${state.envId}` : ""}${state.live ? "" : " · from the store"}`;
    const keys = [OVERVIEW, ...state.workerIds];
    if (tabs.children.length !== keys.length) buildTabs();
    for (const tab of /** @type {HTMLElement[]} */ ([...tabs.children])) {
      const key = tab.dataset.key ?? "";
      tab.setAttribute("aria-selected", String(key === active));
      if (key !== OVERVIEW) tab.dataset.status = state.worker(key).scalars.status ?? "pending";
    }
    let panel = panels.get(active);
    if (panel && active === OVERVIEW && panel.ids.length !== state.workerIds.length) {
      panel.destroy();
      panel = undefined;
    }
    if (!panel) {
      panel = active === OVERVIEW ? overviewPanel(state, onStop) : workerPanel(state.worker(active), active, onStop);
      panels.set(active, panel);
    }
    if (body.firstChild !== panel.root) body.replaceChildren(panel.root);
    panel.update();
  }

  function schedule() {
    if (scheduled || disposed) return;
    scheduled = true;
    (globalThis.requestAnimationFrame ?? ((/** @type {any} */ f) => setTimeout(f, 16)))(draw);
  }

  function hello() {
    client.request("hello").then(({ result, buffers }) => {
      state.applySnapshot(result, buffers);
      schedule();
    }, (err) => { body.textContent = `Could not load the run: ${err.message}`; });
  }

  /** @param {any} msg @param {any[]} buffers */
  function onMessage(msg, buffers) {
    if (!msg || msg.kind !== "delta") return;
    if (state.applyDelta(msg, buffers ?? []) === "resync") hello();
    schedule();
  }
  model.on("msg:custom", onMessage);
  hello();

  return () => {
    disposed = true;
    model.off("msg:custom", onMessage);
    client.request("focus", { view: client.viewId, worker_id: null }).catch(() => {});
    client.dispose();
    cleanupError();
    for (const panel of panels.values()) panel.destroy();
  };
}

export default { render };
