// RunDashboard view: one tab per worker plus "All workers". State arrives as a snapshot (on
// render) and then as deltas; see docs/widgets.md for the messages.

import { workerColour } from "./chart.js";
import { closureActions } from "./closure_actions.js";
import { DashboardState, vocabulary } from "./dashboard_state.js";
import { overviewPanel, workerPanel } from "./dashboard_panels.js";
import { LONG_REQUEST_MS, createClient, errorArea, h, hideStaticTwin } from "./protocol.js";

export { DashboardState, recentRows, vocabulary } from "./dashboard_state.js";
export { bucketCaption, closureRows, statusLine } from "./dashboard_panels.js";

const OVERVIEW = "__all__";

/** @typedef {import("./protocol.js").WidgetModel} WidgetModel */

/** @param {{model: WidgetModel, el: HTMLElement, host?: import("./closure_actions.js").Host}} ctx */
function render({ model, el, host }) {
  const root = h("div", "nbt-root nbt-dashboard");
  el.append(root);
  /** @type {import("./dashboard_state.js").Vocab} */
  let vocab;
  try {
    vocab = vocabulary(model.get("vocab"));
  } catch (err) {
    root.append(h("div", "nbt-error-line", `Cannot show this dashboard: ${/** @type {Error} */ (err).message}`));
    return () => {};
  }
  const title = h("div", "nbt-title", `Run ${model.get("run_id")}`);
  const outcome = h("div", "nbt-outcome");
  const cleanupError = errorArea(model, root);
  const tabs = h("div", "nbt-tabs");
  tabs.setAttribute("role", "tablist");
  const body = h("div", "nbt-body", "Loading…");
  root.prepend(title, outcome);
  root.append(tabs, body);
  const client = createClient(model);
  // once the run has ended: Evaluate policies, Keep / Archive / Delete; the eval run below
  const actions = closureActions({ model, client, host });
  root.append(actions.root, actions.evalBox);
  const state = new DashboardState(vocab);
  /** @type {Map<string, any>} */
  const panels = new Map();
  let active = OVERVIEW;
  let scheduled = false;
  let disposed = false;
  // At most one snapshot request out; a gap meanwhile asks for one more after it (a store
  // run nudges on every commit: without this, one request per nudge piled up).
  let resyncing = false;
  let again = false;

  /** @param {string | null} wid @param {HTMLElement} out @param {HTMLButtonElement} btn */
  function onStop(wid, out, btn) {
    btn.dataset.busy = "1";
    btn.disabled = true;
    out.textContent = "stopping…";
    client.request("stop", { worker_id: wid }, { timeoutMs: LONG_REQUEST_MS }).then(
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
      if (key !== OVERVIEW) tab.style.setProperty("--nbt-worker", workerColour(state.colours, key));
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
    outcome.textContent = state.outcome ?? "";
    outcome.className = `nbt-outcome${state.outcome && /failed/.test(state.outcome) ? " nbt-failed" : ""}`;
    const keys = [OVERVIEW, ...state.workerIds];
    const shown = [...tabs.children].map((t) => /** @type {HTMLElement} */ (t).dataset.key);
    if (shown.length !== keys.length || keys.some((k, i) => shown[i] !== k)) buildTabs();
    dropStalePanels();
    for (const tab of /** @type {HTMLElement[]} */ ([...tabs.children])) {
      const key = tab.dataset.key ?? "";
      tab.setAttribute("aria-selected", String(key === active));
      if (key === OVERVIEW) continue;
      tab.dataset.status = state.statusOf(key);
      tab.setAttribute("aria-label", `${key}: ${tab.dataset.status}`);
    }
    let panel = panels.get(active);
    if (!panel) {
      panel = active === OVERVIEW
        ? overviewPanel(state, onStop)
        : workerPanel(state, active, workerColour(state.colours, active), onStop);
      panels.set(active, panel);
    }
    if (body.firstChild !== panel.root) body.replaceChildren(panel.root);
    panel.update();
    actions.update(state.allFinal());
  }

  /**
   * Panels built for what the state no longer holds go: an overview of other workers, a
   * worker a snapshot no longer names, or one whose state object is not the panel's.
   */
  function dropStalePanels() {
    const ids = state.workerIds.join("\n");
    for (const [key, panel] of panels) {
      const fresh = key === OVERVIEW ? panel.ids.join("\n") === ids : state.workerIds.includes(key) && panel.worker === state.workers.get(key);
      if (fresh) continue;
      panel.destroy();
      panels.delete(key);
    }
    if (active !== OVERVIEW && !state.workerIds.includes(active)) active = OVERVIEW;
  }

  function schedule() {
    if (scheduled || disposed) return;
    scheduled = true;
    (globalThis.requestAnimationFrame ?? ((/** @type {any} */ f) => setTimeout(f, 16)))(draw);
  }

  function hello() {
    if (resyncing) {
      again = true;
      return;
    }
    resyncing = true;
    client.request("hello").then(({ result, buffers }) => {
      state.applySnapshot(result, buffers);
      hideStaticTwin(el); // a kernel answered: the live view replaces the saved table
      schedule();
    }, (err) => { body.textContent = `Could not load the run: ${err.message}`; }).finally(() => {
      resyncing = false;
      if (again && !disposed) {
        again = false;
        hello();
      }
    });
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
    actions.destroy();
    for (const panel of panels.values()) panel.destroy();
  };
}

export default { render };
