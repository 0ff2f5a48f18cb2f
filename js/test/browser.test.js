import { describe, expect, it } from "vitest";
import browser, { alignRuns, humanBytes } from "../src/browser.js";
import { FakeModel, tick } from "./fake_model.js";

const A = "01J00000000000000000000AAA";
const B = "01J00000000000000000000BBB";

function row(run_id, extra = {}) {
  return {
    run_id,
    name: `run-${run_id.slice(-3)}`,
    created: "2026-11-30 06:00:00",
    created_at: 1,
    status: "completed",
    live: false,
    workers: [["000001", "completed"], ["000002", "failed"]],
    episodes: 10,
    steps: 123,
    size: 2048,
    ...extra,
  };
}

function makeModel(state = {}) {
  return new FakeModel({
    db: "/tmp/x.sqlite",
    rows: [row(A), row(B, { status: "running", workers: [["000001", "running"]] })],
    total: 60,
    page: 0,
    page_size: 25,
    sort: "created",
    descending: true,
    selected: [],
    overlay: {},
    archive_to: "/tmp/x-archive.sqlite",
    ...state,
  });
}

function mount(model) {
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = browser.render({ model, el });
  return { el, cleanup };
}

const SUMMARY = {
  run_id: A,
  live: false,
  folder_bytes: 4096,
  workers: [
    { worker_id: "000001", status: "completed", exit_code: 0, episodes: 6, steps: 60, mean_return: 0.5 },
    { worker_id: "000002", status: "failed", exit_code: 1, episodes: 4, steps: 63, mean_return: null },
  ],
};

describe("RunBrowser view", () => {
  it("draws one table row per run of the page, with per-worker status dots", () => {
    const { el, cleanup } = mount(makeModel());
    const rows = el.querySelectorAll("tr.nbt-run");
    expect(rows.length).toBe(2);
    expect(rows[0].dataset.runId).toBe(A);
    const dots = rows[0].querySelectorAll(".nbt-wdot");
    expect([...dots].map((d) => d.dataset.status)).toEqual(["completed", "failed"]);
    expect(rows[0].textContent).toContain("2.0 KiB");
    expect(el.querySelector(".nbt-page-info").textContent.trim()).toBe("1–25 of 60");
    expect(el.querySelector(".nbt-prev").disabled).toBe(true);
    expect(el.querySelector(".nbt-next").disabled).toBe(false);
    cleanup();
  });

  it("sorts by a column and flips the direction on a second click", () => {
    const model = makeModel({ page: 1 });
    const { el, cleanup } = mount(model);
    const size = el.querySelector("th[data-key='size']");
    size.click();
    expect(model.saves).toBe(1);
    expect(model.get("sort")).toBe("size");
    expect(model.get("descending")).toBe(true);
    expect(model.get("page")).toBe(0);
    expect(el.querySelector("th[data-key='size']").getAttribute("aria-sort")).toBe("descending");
    el.querySelector("th[data-key='size']").click();
    expect(model.get("descending")).toBe(false);
    el.querySelector("th[data-key='name']").dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(model.get("sort")).toBe("name");
    expect(model.get("descending")).toBe(false);
    cleanup();
  });

  it("pages forward and back", () => {
    const model = makeModel();
    const { el, cleanup } = mount(model);
    el.querySelector(".nbt-next").click();
    expect(model.get("page")).toBe(1);
    el.querySelector(".nbt-prev").click();
    expect(model.get("page")).toBe(0);
    cleanup();
  });

  it("a row click selects that run alone; checkboxes build a multi-selection", () => {
    const model = makeModel();
    const { el, cleanup } = mount(model);
    el.querySelector(`tr[data-run-id='${B}'] .nbt-name`).click();
    expect(model.get("selected")).toEqual([B]);
    expect(el.querySelector(`tr[data-run-id='${B}']`).getAttribute("aria-selected")).toBe("true");
    el.querySelector(`tr[data-run-id='${A}'] .nbt-select`).click();
    expect(model.get("selected")).toEqual([B, A]);
    expect(el.querySelector(".nbt-selection").textContent).toContain("2 runs selected");
    el.querySelector(`tr[data-run-id='${B}'] .nbt-select`).click();
    expect(model.get("selected")).toEqual([A]);
    el.querySelector(".nbt-clear").click();
    expect(model.get("selected")).toEqual([]);
    cleanup();
  });

  it("Delete asks first, showing the per-worker summary; Cancel sends nothing", async () => {
    const model = makeModel();
    model.kernel.summary = (params, id) => model.respond(id, { ...SUMMARY, run_id: params.run_id });
    const { el, cleanup } = mount(model);
    el.querySelector(`tr[data-run-id='${A}'] .nbt-delete`).click();
    await tick(5);
    expect(model.requests("summary")[0].content.params).toEqual({ run_id: A });
    expect(model.get("selected")).toEqual([]); // the button does not select the row
    const confirm = el.querySelector(".nbt-confirm");
    expect(confirm.hidden).toBe(false);
    const workers = [...confirm.querySelectorAll("tr[data-worker]")].map((r) => r.dataset.worker);
    expect(workers).toEqual(["000001", "000002"]);
    expect(confirm.textContent).toContain("2 workers, 10 episodes, 123 steps");
    confirm.querySelector(".nbt-confirm-no").click();
    expect(confirm.hidden).toBe(true);
    expect(model.requests("delete")).toHaveLength(0);
    cleanup();
  });

  it("confirming a delete sends it and shows what went", async () => {
    const model = makeModel();
    model.kernel.summary = (params, id) => model.respond(id, SUMMARY);
    model.kernel.delete = (params, id) =>
      model.respond(id, { run_id: params.run_id, counts: { episodes: 10, step_chunks: 10, workers: 2, runs: 1 } });
    const { el, cleanup } = mount(model);
    el.querySelector(`tr[data-run-id='${A}'] .nbt-delete`).click();
    await tick(5);
    el.querySelector(".nbt-confirm-yes").click();
    await tick(5);
    expect(model.requests("delete")[0].content.params).toEqual({ run_id: A });
    expect(el.querySelector(".nbt-action-out").textContent).toBe(
      `deleted run ${A}: 10 episodes, 10 step_chunks, 2 workers, 1 runs`,
    );
    expect(el.querySelector(".nbt-confirm").hidden).toBe(true);
    cleanup();
  });

  it("archive sends the file typed in the confirm step; a refusal is shown", async () => {
    const model = makeModel();
    model.kernel.summary = (params, id) => model.respond(id, SUMMARY);
    model.kernel.archive = (params, id) => model.fail(id, "RunError", "run is already in archive");
    const { el, cleanup } = mount(model);
    el.querySelector(`tr[data-run-id='${A}'] .nbt-archive`).click();
    await tick(5);
    const input = el.querySelector(".nbt-archive-to");
    expect(input.value).toBe("/tmp/x-archive.sqlite");
    input.value = "/tmp/cold.sqlite";
    el.querySelector(".nbt-confirm-yes").click();
    await tick(5);
    expect(model.requests("archive")[0].content.params).toEqual({ run_id: A, to: "/tmp/cold.sqlite" });
    expect(el.querySelector(".nbt-action-out").textContent).toContain("RunError: run is already in archive");
    expect(el.querySelector(".nbt-confirm-no").disabled).toBe(false);
    cleanup();
  });

  it("a run with live workers cannot be confirmed", async () => {
    const model = makeModel();
    model.kernel.summary = (params, id) => model.respond(id, { ...SUMMARY, live: true });
    const { el, cleanup } = mount(model);
    el.querySelector(`tr[data-run-id='${B}'] .nbt-delete`).click();
    await tick(5);
    expect(el.querySelector(".nbt-confirm-yes").disabled).toBe(true);
    expect(el.querySelector(".nbt-confirm").textContent).toContain("live workers");
    cleanup();
  });

  it("redraws when the kernel pushes a new page and shows an empty database", () => {
    const model = makeModel();
    const { el, cleanup } = mount(model);
    model.set("rows", [row(B)]);
    model.set("total", 1);
    expect(el.querySelectorAll("tr.nbt-run")).toHaveLength(1);
    model.set("rows", []);
    model.set("total", 0);
    expect(el.querySelector("tr.nbt-empty").textContent).toContain("no runs");
    expect(el.querySelector(".nbt-page-info").textContent.trim()).toBe("0–0 of 0");
    cleanup();
  });

  it("overlays the learning curves of several runs and removes them on deselect", () => {
    const model = makeModel();
    const { el, cleanup } = mount(model);
    model.set("overlay", {
      metric: "total_reward",
      runs: [
        { run_id: A, name: "a", workers: 2, ep: [0, 1, 2], mean: [1, 2, 3], lo: [0, 1, 2], hi: [2, 3, 4] },
        { run_id: B, name: "b", workers: 1, ep: [0, 2], mean: [5, 6], lo: [5, 6], hi: [5, 6] },
      ],
    });
    const box = el.querySelector(".nbt-overlay");
    expect(box.dataset.runs).toBe("2");
    expect(box.querySelector(".nbt-chart").dataset.points).toBe("3");
    model.set("overlay", {});
    expect(box.dataset.runs).toBe("0");
    expect(box.querySelector(".nbt-chart")).toBeNull();
    cleanup();
  });

  it("each row's controls name their run for a screen reader", () => {
    const { el, cleanup } = mount(makeModel());
    const first = el.querySelector("tr.nbt-run");
    expect(first.querySelector(".nbt-select").getAttribute("aria-label")).toBe("select run-AAA to compare");
    expect(first.querySelector(".nbt-archive").getAttribute("aria-label")).toBe("Archive run-AAA");
    expect(first.querySelector(".nbt-delete").getAttribute("aria-label")).toBe("Delete run-AAA");
    cleanup();
  });

  it("keyboard focus stays on its control when the kernel pushes the page again", () => {
    const model = makeModel();
    const { el, cleanup } = mount(model);
    const delB = () => [...el.querySelectorAll("tr.nbt-run")].find((tr) => tr.dataset.runId === B).querySelector(".nbt-delete");
    delB().focus();
    expect(document.activeElement).toBe(delB());
    model.set("rows", [row(B, { episodes: 11 }), row(A)]); // a new page: B moved to the top
    expect(el.querySelector("tr.nbt-run").dataset.runId).toBe(B);
    expect(document.activeElement).toBe(delB());
    cleanup();
  });

  it("a new total redraws the pager, not the rows", () => {
    const model = makeModel();
    const { el, cleanup } = mount(model);
    const first = el.querySelector("tr.nbt-run");
    model.set("total", 61);
    expect(el.querySelector(".nbt-page-info").textContent).toContain("of 61");
    expect(el.querySelector("tr.nbt-run")).toBe(first);
    cleanup();
  });

  it("a failed summary for a run no longer asked about does not replace the newer confirm step", async () => {
    const model = makeModel();
    const asked = [];
    model.kernel.summary = (p, id) => asked.push({ id, run: p.run_id });
    const { el, cleanup } = mount(model);
    const rows = el.querySelectorAll("tr.nbt-run");
    rows[0].querySelector(".nbt-delete").click(); // A: its answer comes late, and fails
    rows[1].querySelector(".nbt-delete").click(); // B: asked last, answered first
    await tick();
    model.respond(asked[1].id, { ...SUMMARY, run_id: B });
    await tick();
    model.fail(asked[0].id, "StoreError", "database is locked");
    await tick();
    const box = el.querySelector(".nbt-confirm");
    expect(box.dataset.runId).toBe(B);
    expect(box.querySelector(".nbt-confirm-yes")).not.toBeNull();
    expect(box.textContent).not.toContain("database is locked");
    cleanup();
  });

  it("cleanup removes every listener it added", () => {
    const model = makeModel();
    const { cleanup } = mount(model);
    cleanup();
    for (const ev of ["change:rows", "change:overlay", "change:selected", "change:error", "msg:custom"]) {
      expect(model.listenerCount(ev)).toBe(0);
    }
  });
});

describe("alignRuns and humanBytes", () => {
  it("puts runs on a shared episode axis with nulls where a run has no point", () => {
    const { x, series } = alignRuns([
      { ep: [0, 1, 2], mean: [1, 2, 3], lo: [0, 1, 2], hi: [2, 3, 4] },
      { ep: [0, 2, 5], mean: [5, 6, 7], lo: [4, 5, 6], hi: [6, 7, 8] },
    ]);
    expect(x).toEqual([0, 1, 2, 5]);
    expect(series).toHaveLength(6);
    expect(series[0]).toEqual([1, 2, 3, null]);
    expect(series[3]).toEqual([5, null, 6, 7]);
    expect(series[5]).toEqual([6, null, 7, 8]);
  });

  it("formats sizes in binary units", () => {
    expect(humanBytes(512)).toBe("512 B");
    expect(humanBytes(2048)).toBe("2.0 KiB");
    expect(humanBytes(5 * 1024 * 1024)).toBe("5.0 MiB");
  });
});

describe("bundle", () => {
  it("the committed browser.js renders a page", async () => {
    const bundled = (await import("../../src/nbtrain/static/browser.js")).default;
    const el = document.createElement("div");
    const cleanup = bundled.render({ model: makeModel(), el });
    expect(el.querySelectorAll("tr.nbt-run")).toHaveLength(2);
    cleanup();
  });
});
