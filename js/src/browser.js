// RunBrowser view: a sortable, paged table of runs (one page arrives as the `rows` trait),
// selection (one run: the kernel puts its dashboard below; several: their learning curves
// are overlaid here), and Archive / Delete behind a confirm step showing the per-worker
// summary. Traits and requests: docs/retention.md ("RunBrowser").

import { createChart, formatNumber } from "./chart.js";
import { askConfirm, button, humanBytes } from "./confirm.js";
import { createClient, errorArea, h } from "./protocol.js";

/** @typedef {import("./protocol.js").WidgetModel} WidgetModel */

export { humanBytes };

export const COLUMNS = [
  { key: "name", label: "name" },
  { key: "created", label: "created" },
  { key: "status", label: "status" },
  { key: "workers", label: "workers" },
  { key: "episodes", label: "episodes", num: true },
  { key: "steps", label: "steps", num: true },
  { key: "size", label: "size", num: true },
];
const MAX_DOTS = 16;
// The row controls that can hold keyboard focus, by class: restored after a redraw.
const FOCUSABLE = ["nbt-select", "nbt-archive", "nbt-delete"];
// Runs (not workers) in an overlay: a colour by position, from a palette of its own.
const RUN_PALETTE = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
/** @param {number} i */
const colour = (i) => RUN_PALETTE[i % RUN_PALETTE.length];

/**
 * Several runs' curves on one shared episode axis: per run mean, lo, hi (null where a run
 * has no point at that x).
 * @param {Array<{ep: number[], mean: Array<number|null>, lo: Array<number|null>, hi: Array<number|null>}>} runs
 */
export function alignRuns(runs) {
  const xs = new Set();
  for (const r of runs) for (const e of r.ep) xs.add(e);
  const x = [...xs].sort((a, b) => a - b);
  const where = new Map(x.map((e, i) => [e, i]));
  const series = [];
  for (const r of runs) {
    for (const key of ["mean", "lo", "hi"]) {
      const col = new Array(x.length).fill(null);
      r.ep.forEach((e, i) => {
        col[/** @type {number} */ (where.get(e))] = r[/** @type {"mean"|"lo"|"hi"} */ (key)][i];
      });
      series.push(col);
    }
  }
  return { x, series };
}

/** @param {string} hex @param {number} alpha */
function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** @param {Array<[string, string]>} workers */
function workersCell(workers) {
  const td = h("td", "nbt-workers");
  if (workers.length <= MAX_DOTS) {
    for (const [wid, status] of workers) {
      const dot = h("span", "nbt-wdot");
      dot.dataset.status = status;
      dot.dataset.worker = wid;
      dot.title = `${wid}: ${status}`;
      td.append(dot);
    }
  }
  const counts = new Map();
  for (const [, status] of workers) counts.set(status, (counts.get(status) ?? 0) + 1);
  const text = [...counts].map(([s, n]) => `${n} ${s}`).join(", ");
  td.append(h("span", "nbt-wcount", workers.length <= MAX_DOTS ? ` ${workers.length}` : ` ${text}`));
  td.title = text;
  return td;
}

/** @param {{ model: WidgetModel, el: HTMLElement }} ctx */
function render({ model, el }) {
  const client = createClient(model);
  const root = h("div", "nbt-root nbt-browser");
  el.append(root);
  const disposeError = errorArea(model, root);

  const head = h("div", "nbt-browser-head");
  const title = h("span", "nbt-title");
  const prev = button("‹ Prev", "nbt-prev");
  const info = h("span", "nbt-page-info");
  const next = button("Next ›", "nbt-next");
  const pager = h("span", "nbt-pager");
  pager.append(prev, info, next);
  head.append(title, pager);

  const table = h("table", "nbt-runs");
  const thead = h("thead");
  const tbody = h("tbody");
  table.append(thead, tbody);
  const selection = h("div", "nbt-selection");
  const confirm = h("div", "nbt-confirm");
  confirm.hidden = true;
  const actionOut = h("div", "nbt-action-out");
  const overlayBox = h("div", "nbt-overlay");
  root.append(head, table, selection, confirm, actionOut, overlayBox);

  /** @param {string} name @param {any} value */
  function save(name, value) {
    model.set(name, value);
    model.save_changes();
  }
  const selected = () => /** @type {string[]} */ (model.get("selected") ?? []);

  // -- header and paging -----------------------------------------------------------------
  const headRow = h("tr");
  headRow.append(h("th", "nbt-select-col"));
  for (const col of COLUMNS) {
    const th = h("th", "nbt-sortable", col.label);
    th.dataset.key = col.key;
    th.tabIndex = 0; // sortable from the keyboard too
    th.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        th.click();
      }
    });
    th.addEventListener("click", () => {
      // One save for the three traits: the kernel reads the new page once per message.
      if (model.get("sort") === col.key) model.set("descending", !model.get("descending"));
      else {
        model.set("descending", col.key !== "name");
        model.set("sort", col.key);
      }
      model.set("page", 0);
      model.save_changes();
    });
    headRow.append(th);
  }
  headRow.append(h("th", "nbt-actions-col"));
  thead.append(headRow);
  prev.addEventListener("click", () => save("page", Math.max(0, model.get("page") - 1)));
  next.addEventListener("click", () => save("page", model.get("page") + 1));

  function drawHead() {
    for (const th of headRow.querySelectorAll("th.nbt-sortable")) {
      const key = /** @type {HTMLElement} */ (th).dataset.key;
      th.setAttribute(
        "aria-sort",
        key === model.get("sort") ? (model.get("descending") ? "descending" : "ascending") : "none",
      );
    }
    const total = model.get("total") ?? 0;
    const size = model.get("page_size") ?? 25;
    const page = model.get("page") ?? 0;
    const first = total === 0 ? 0 : page * size + 1;
    const last = Math.min(total, (page + 1) * size);
    info.textContent = ` ${first}–${last} of ${total} `;
    prev.disabled = page <= 0;
    next.disabled = last >= total;
    title.textContent = `Runs in ${model.get("db")}`;
  }

  // -- rows ------------------------------------------------------------------------------
  /** The row control with keyboard focus, as its run and class (the rows are rebuilt). */
  function focusedControl() {
    const active = /** @type {Document | ShadowRoot} */ (tbody.getRootNode()).activeElement;
    if (!active || !tbody.contains(active)) return null;
    const runId = /** @type {HTMLElement | null} */ (active.closest("tr.nbt-run"))?.dataset.runId;
    const role = FOCUSABLE.find((c) => active.classList.contains(c));
    return runId && role ? { runId, role } : null;
  }

  /** @param {{runId: string, role: string} | null} where */
  function refocus(where) {
    if (!where) return;
    const tr = /** @type {HTMLElement[]} */ ([...tbody.querySelectorAll("tr.nbt-run")]).find((r) => r.dataset.runId === where.runId);
    const control = /** @type {HTMLElement | null | undefined} */ (tr?.querySelector(`.${where.role}`));
    control?.focus();
  }

  function drawRows() {
    const chosen = new Set(selected());
    const focused = focusedControl();
    tbody.replaceChildren();
    const rows = model.get("rows") ?? [];
    if (rows.length === 0) {
      const tr = h("tr", "nbt-empty");
      const td = h("td", "nbt-muted", "no runs in this database");
      td.setAttribute("colspan", String(COLUMNS.length + 2));
      tr.append(td);
      tbody.append(tr);
    }
    for (const row of rows) {
      const tr = h("tr", "nbt-run");
      tr.dataset.runId = row.run_id;
      tr.dataset.status = row.status;
      tr.setAttribute("aria-selected", String(chosen.has(row.run_id)));
      const label = row.name || row.run_id;
      const pick = /** @type {HTMLInputElement} */ (h("input", "nbt-select"));
      pick.type = "checkbox";
      pick.checked = chosen.has(row.run_id);
      pick.title = "select to compare";
      pick.setAttribute("aria-label", `select ${label} to compare`);
      pick.addEventListener("click", (ev) => {
        ev.stopPropagation();
        const now = selected().filter((r) => r !== row.run_id);
        save("selected", pick.checked ? [...now, row.run_id] : now);
      });
      const pickCell = h("td");
      pickCell.append(pick);
      const name = h("td", "nbt-name", label);
      name.title = row.run_id;
      const status = h("td", `nbt-status nbt-status-${row.status}`, row.status);
      tr.append(
        pickCell,
        name,
        h("td", "nbt-created", row.created),
        status,
        workersCell(row.workers),
        h("td", "nbt-num", formatNumber(row.episodes)),
        h("td", "nbt-num", formatNumber(row.steps)),
        h("td", "nbt-num", humanBytes(row.size)),
      );
      const actions = h("td", "nbt-actions");
      const archive = button("Archive", "nbt-archive");
      const del = button("Delete", "nbt-delete");
      archive.setAttribute("aria-label", `Archive ${label}`);
      del.setAttribute("aria-label", `Delete ${label}`);
      archive.addEventListener("click", (ev) => { ev.stopPropagation(); ask("archive", row); });
      del.addEventListener("click", (ev) => { ev.stopPropagation(); ask("delete", row); });
      actions.append(archive, del);
      tr.append(actions);
      // A click on the row selects just this run (its dashboard opens below).
      tr.addEventListener("click", () => save("selected", [row.run_id]));
      tbody.append(tr);
    }
    refocus(focused);
    const n = chosen.size;
    selection.replaceChildren();
    if (n > 0) {
      selection.append(h("span", "", n === 1 ? "1 run selected: its dashboard is below" : `${n} runs selected: learning curves overlaid below`));
      const clear = button("Clear", "nbt-clear");
      clear.addEventListener("click", () => save("selected", []));
      selection.append(" ", clear);
    }
  }

  // -- confirm step (shared with the dashboard's closure summary: confirm.js) -------------
  /** @param {"archive" | "delete"} action @param {any} row */
  function ask(action, row) {
    askConfirm(confirm, action, {
      client, runId: row.run_id, label: `${row.name || ""} (${row.run_id})`, archiveTo: model.get("archive_to") ?? "",
      report: (text, failed) => {
        actionOut.textContent = text;
        actionOut.className = failed ? "nbt-action-out nbt-error-line" : "nbt-action-out";
      },
    });
  }

  // -- overlay ---------------------------------------------------------------------------
  /** @type {any} */
  let chart = null;
  let chartKey = "";
  function drawOverlay() {
    const data = model.get("overlay") ?? {};
    /** @type {any[]} runs as the kernel sends them (docs/retention.md) */
    const runs = data.runs ?? [];
    overlayBox.dataset.runs = String(runs.length);
    if (runs.length < 2) {
      chart?.destroy();
      chart = null;
      chartKey = "";
      overlayBox.replaceChildren();
      return;
    }
    const key = runs.map((r) => r.run_id).join(",");
    if (key !== chartKey) {
      chart?.destroy();
      overlayBox.replaceChildren();
      /** @type {Array<{label: string, stroke: string, width: number}>} */
      const series = [];
      /** @type {Array<{series: [number, number], fill: string}>} */
      const bands = [];
      runs.forEach((r, i) => {
        const c = colour(i);
        const label = `${r.name || "run"} …${r.run_id.slice(-6)} (${r.workers} workers)`;
        series.push({ label, stroke: c, width: 2 }, { label: `${label} −sd`, stroke: rgba(c, 0.35), width: 1 }, { label: `${label} +sd`, stroke: rgba(c, 0.35), width: 1 });
        bands.push({ series: /** @type {[number, number]} */ ([3 + 3 * i, 2 + 3 * i]), fill: rgba(c, 0.12) });
      });
      chart = createChart(overlayBox, { title: "Return per episode: mean ± sd across each run's workers", yLabel: "return", series, bands, height: 260 });
      chartKey = key;
    }
    const { x, series } = alignRuns(runs);
    chart.setData([x, ...series]);
  }

  // The pager and the rows redraw on their own traits: a new page sets rows and total
  // together, and the rows (all their elements) were rebuilt for each.
  const headEvents = ["change:total", "change:page", "change:sort", "change:descending", "change:page_size"];
  const rowEvents = ["change:rows", "change:selected"];
  for (const ev of headEvents) model.on(ev, drawHead);
  for (const ev of rowEvents) model.on(ev, drawRows);
  model.on("change:overlay", drawOverlay);
  drawHead();
  drawRows();
  drawOverlay();

  return () => {
    for (const ev of headEvents) model.off(ev, drawHead);
    for (const ev of rowEvents) model.off(ev, drawRows);
    model.off("change:overlay", drawOverlay);
    chart?.destroy();
    client.dispose();
    disposeError();
  };
}

export default { render };
