// What a dashboard offers once its run has ended (issue 10 item 4, issue 12 item 4):
// "Evaluate policies" starts an eval run of the workers' saved policies, whose dashboard the
// kernel puts in the `eval_dashboard` trait and this view renders below; Keep / Archive /
// Delete go through the RunBrowser's confirm step (confirm.js).

import { askConfirm, button } from "./confirm.js";
import { h } from "./protocol.js";

/** @typedef {import("./protocol.js").WidgetModel} WidgetModel */
/** @typedef {import("./protocol.js").Host} Host */

export const DEFAULT_EVAL_EPISODES = "100";

/**
 * @param {object} o
 * @param {WidgetModel} o.model
 * @param {{request: (method: string, params?: Record<string, any>) => Promise<{result: any}>}} o.client
 * @param {Host | undefined} o.host
 */
export function closureActions({ model, client, host }) {
  const root = h("div", "nbt-closure-actions");
  root.hidden = true;
  const evalLine = h("div", "nbt-eval-line");
  const evaluate = button("Evaluate policies", "nbt-evaluate");
  evaluate.title = "play each worker's saved policy greedily in a new eval run";
  const episodes = /** @type {HTMLInputElement} */ (h("input", "nbt-eval-episodes"));
  episodes.type = "text";
  episodes.inputMode = "numeric";
  episodes.size = 6;
  episodes.value = DEFAULT_EVAL_EPISODES;
  episodes.setAttribute("aria-label", "episodes per worker");
  const evalOut = h("span", "nbt-eval-out");
  evalLine.append(evaluate, episodes, h("span", "nbt-muted", " episodes per worker "), evalOut);
  const keepLine = h("div", "nbt-keep-line");
  const keep = button("Keep", "nbt-keep");
  const archive = button("Archive", "nbt-archive");
  const del = button("Delete", "nbt-delete");
  const closureOut = h("span", "nbt-closure-out");
  keepLine.append(keep, archive, del, closureOut);
  const confirm = h("div", "nbt-confirm");
  confirm.hidden = true;
  const evalBox = h("div", "nbt-eval-dashboard");
  root.append(evalLine, keepLine, confirm);
  /** @type {AbortController | null} */
  let shown = null;
  let shownRef = "";

  /** @param {string} text @param {boolean} failed */
  function report(text, failed) {
    closureOut.textContent = text;
    closureOut.classList.toggle("nbt-error-line", failed);
  }

  evaluate.addEventListener("click", () => {
    evaluate.disabled = true;
    evalOut.classList.remove("nbt-error-line");
    evalOut.textContent = "starting the eval run…";
    client.request("evaluate", { episodes: episodes.value }).then(({ result }) => {
      evalOut.textContent = `eval run ${result.run_id} started: its dashboard is below`;
    }, (err) => {
      evalOut.textContent = `evaluate failed: ${err.message}`;
      evalOut.classList.add("nbt-error-line");
    }).finally(() => { evaluate.disabled = gone(); });
  });
  keep.addEventListener("click", () => {
    confirm.hidden = true;
    client.request("keep").then(() => {}, (err) => report(`keep failed: ${err.message}`, true));
  });
  const runId = () => String(model.get("run_id") ?? "");
  /** @param {"archive" | "delete"} action */
  const ask = (action) => askConfirm(confirm, action, {
    client, runId: runId(), label: runId(), archiveTo: model.get("archive_to") ?? "", report,
  });
  archive.addEventListener("click", () => ask("archive"));
  del.addEventListener("click", () => ask("delete"));

  /** archived or deleted: nothing of the run is left here to act on */
  const gone = () => /^(archived|deleted)\b/.test(model.get("closure") ?? "");

  function showClosure() {
    const text = model.get("closure") ?? "";
    if (text) report(text === "kept" ? "kept: the run stays in its database" : text, false);
    for (const b of [evaluate, archive, del]) b.disabled = gone();
    keep.disabled = gone();
  }

  function showEval() {
    const ref = model.get("eval_dashboard");
    if (!ref || ref === shownRef) return;
    shown?.abort();
    shown = new AbortController();
    shownRef = ref;
    const el = h("div", "nbt-eval-child");
    evalBox.replaceChildren(el);
    if (!host) {
      el.textContent = "this Jupyter's anywidget cannot show a widget inside another: display the eval run's dashboard yourself";
      return;
    }
    const signal = shown.signal;
    host.getWidget(ref).then((child) => child.render({ el, signal })).catch((/** @type {any} */ err) => {
      el.textContent = `cannot show the eval run's dashboard: ${err?.message ?? err}`;
    });
  }

  model.on("change:closure", showClosure);
  model.on("change:eval_dashboard", showEval);
  showClosure();
  showEval();
  return {
    root,
    evalBox,
    /** @param {boolean} ended every worker has ended */
    update(ended) { root.hidden = !ended; },
    destroy() {
      shown?.abort();
      model.off("change:closure", showClosure);
      model.off("change:eval_dashboard", showEval);
    },
  };
}
