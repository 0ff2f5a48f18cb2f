// The confirm step before Archive or Delete, shared by the RunBrowser and a dashboard's
// closure summary: the per-worker summary the kernel sends ("summary" request), what will
// go, the archive file (editable), then the action. Nothing is changed before "yes".

import { formatNumber } from "./format.js";
import { LONG_REQUEST_MS, h } from "./protocol.js";

/** @param {number} n */
export function humanBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** @param {string} label @param {string} className */
export function button(label, className) {
  const b = /** @type {HTMLButtonElement} */ (h("button", className, label));
  b.type = "button";
  return b;
}

/**
 * @typedef {object} ConfirmInfo what the kernel's "summary" request answers
 * @property {string} run_id
 * @property {Array<Record<string, any>>} workers
 * @property {boolean} live
 * @property {number} folder_bytes
 */

/**
 * @typedef {object} ConfirmOptions
 * @property {{request: (method: string, params?: Record<string, any>, options?: {timeoutMs?: number}) => Promise<{result: any}>}} client
 * @property {string} runId
 * @property {string} label how the title names the run, e.g. "my run (01J…)"
 * @property {string} archiveTo the archive file offered
 * @property {(text: string, failed: boolean) => void} report the outcome line
 * @property {(action: "archive" | "delete", result: any) => void} [done]
 */

/**
 * Ask the kernel for the run's summary, then show the confirm step in `box`.
 * @param {HTMLElement} box @param {"archive" | "delete"} action @param {ConfirmOptions} o
 */
export function askConfirm(box, action, o) {
  box.hidden = false;
  box.dataset.action = action;
  box.dataset.runId = o.runId;
  box.replaceChildren(h("div", "nbt-muted", `reading run ${o.runId}…`));
  // an answer for a run or action no longer asked about (a later click won) is dropped
  const stale = () => box.dataset.runId !== o.runId || box.dataset.action !== action;
  return o.client.request("summary", { run_id: o.runId }).then(({ result }) => {
    if (!stale()) fillConfirm(box, action, result, o);
  }, (err) => {
    if (!stale()) box.replaceChildren(h("div", "nbt-error-line", err.message));
  });
}

/** @param {HTMLElement} box */
function closeConfirm(box) {
  box.hidden = true;
  box.replaceChildren();
}

/**
 * @param {HTMLElement} box @param {"archive" | "delete"} action @param {ConfirmInfo} info
 * @param {ConfirmOptions} o
 */
export function fillConfirm(box, action, info, o) {
  const verb = action === "delete" ? "Delete" : "Archive";
  const parts = [h("div", "nbt-confirm-title", `${verb} run ${o.label}?`)];
  const summary = h("table", "nbt-summary nbt-confirm-summary");
  const cols = ["worker_id", "status", "exit_code", "episodes", "steps", "mean_return"];
  const hr = h("tr");
  for (const c of ["worker", "status", "exit code", "episodes", "steps", "mean return"]) hr.append(h("th", "", c));
  summary.append(hr);
  for (const w of info.workers) {
    const tr = h("tr");
    tr.dataset.worker = w.worker_id;
    for (const c of cols) tr.append(h("td", "", c === "worker_id" || c === "status" ? String(w[c]) : formatNumber(w[c])));
    summary.append(tr);
  }
  parts.push(summary);
  const eps = info.workers.reduce((a, w) => a + w.episodes, 0);
  const steps = info.workers.reduce((a, w) => a + w.steps, 0);
  const what = action === "delete"
    ? `${info.workers.length} workers, ${eps} episodes, ${steps} steps and the run folder (${humanBytes(info.folder_bytes)}) will be deleted.`
    : `${info.workers.length} workers, ${eps} episodes, ${steps} steps and the run folder move to the archive.`;
  parts.push(h("div", "nbt-confirm-what", what));
  /** @type {HTMLInputElement | null} */
  let target = null;
  if (action === "archive") {
    const label = h("label", "nbt-archive-label", "archive file ");
    target = /** @type {HTMLInputElement} */ (h("input", "nbt-archive-to"));
    target.type = "text";
    target.size = 60;
    target.value = o.archiveTo;
    label.append(target);
    parts.push(label);
  }
  if (info.live) parts.push(h("div", "nbt-error-line", "This run has live workers: stop it first."));
  const yes = button(verb, "nbt-confirm-yes");
  const no = button("Cancel", "nbt-confirm-no");
  yes.disabled = Boolean(info.live);
  const buttons = h("div", "nbt-confirm-buttons");
  buttons.append(yes, no);
  parts.push(buttons);
  box.replaceChildren(...parts);
  no.addEventListener("click", () => closeConfirm(box));
  yes.addEventListener("click", () => {
    yes.disabled = true;
    no.disabled = true;
    const params = action === "archive" ? { run_id: o.runId, to: target?.value ?? "" } : { run_id: o.runId };
    o.client.request(action, params, { timeoutMs: LONG_REQUEST_MS }).then(({ result }) => {
      const counts = Object.entries(result.counts).map(([t, n]) => `${n} ${t}`).join(", ");
      o.report(`${action === "delete" ? "deleted" : "archived"} run ${o.runId}: ${counts}`, false);
      closeConfirm(box);
      o.done?.(action, result);
    }, (err) => {
      o.report(`${verb} failed: ${err.message}`, true);
      no.disabled = false;
    });
  });
}
