import { describe, expect, it } from "vitest";
import dashboard from "../src/dashboard.js";
import { FakeModel, loadFixture, tick } from "./fake_model.js";

const fx = loadFixture();
const RUN = "01J0000000000000000000TEST";
const SUMMARY = {
  run_id: RUN, live: false, folder_bytes: 2048,
  workers: [
    { worker_id: "000001", status: "completed", exit_code: 0, episodes: 6, steps: 20, mean_return: 0.5 },
    { worker_id: "000007", status: "completed", exit_code: 0, episodes: 5, steps: 18, mean_return: 0.25 },
  ],
};
const ENDED = { kind: "delta", seq: 3, outcome: "completed in 1.0 s", workers: {
  "000001": { scalars: { status: "completed", exit_code: 0 } },
  "000007": { scalars: { status: "completed", exit_code: 0 } },
} };

function setup(host) {
  const model = new FakeModel({ run_id: RUN, worker_ids: ["000001", "000007"], archive_to: "/tmp/x-archive.sqlite", closure: "", eval_dashboard: null, vocab: fx.vocab });
  model.kernel.hello = (_p, id) => model.respond(id, fx.snapshot.content, fx.snapshot.buffers);
  model.kernel.summary = (_p, id) => model.respond(id, SUMMARY);
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = dashboard.render({ model, el, host });
  return { model, el, cleanup };
}

const frame = () => tick(30);

describe("closure actions", () => {
  it("appear only once every worker has ended", async () => {
    const { model, el, cleanup } = setup();
    await frame();
    const bar = el.querySelector(".nbt-closure-actions");
    expect(bar.hidden).toBe(true);
    model.receive(ENDED);
    await frame();
    expect(bar.hidden).toBe(false);
    expect([...bar.querySelectorAll("button")].map((b) => b.textContent)).toEqual(["Evaluate policies", "Keep", "Archive", "Delete"]);
    cleanup();
  });

  it("Evaluate sends the episodes and renders the eval run's dashboard below from its reference", async () => {
    const rendered = [];
    const host = { getWidget: async (ref) => ({ render: async ({ el }) => { rendered.push(ref); el.textContent = `child ${ref}`; } }) };
    const { model, el, cleanup } = setup(host);
    model.kernel.evaluate = (params, id) => {
      model.respond(id, { run_id: "01JEVAL" });
      model.set("eval_dashboard", "anywidget:abc");
    };
    await frame();
    model.receive(ENDED);
    await frame();
    el.querySelector(".nbt-eval-episodes").value = "25";
    el.querySelector(".nbt-evaluate").click();
    await tick(10);
    expect(model.requests("evaluate")[0].content.params).toEqual({ episodes: "25" });
    expect(el.querySelector(".nbt-eval-out").textContent).toBe("eval run 01JEVAL started: its dashboard is below");
    expect(rendered).toEqual(["anywidget:abc"]);
    expect(el.querySelector(".nbt-eval-dashboard").textContent).toBe("child anywidget:abc");
    // the eval dashboard sits below the dashboard's own body and actions
    const root = el.querySelector(".nbt-dashboard");
    expect(root.lastElementChild.classList.contains("nbt-eval-dashboard")).toBe(true);
    cleanup();
  });

  it("an evaluate error (no saved policy) is shown next to the button", async () => {
    const { model, el, cleanup } = setup();
    model.kernel.evaluate = (_p, id) => model.fail(id, "RunError", "worker '000001' of run X has no saved policy");
    await frame();
    model.receive(ENDED);
    await frame();
    el.querySelector(".nbt-evaluate").click();
    await tick(10);
    const out = el.querySelector(".nbt-eval-out");
    expect(out.textContent).toBe("evaluate failed: RunError: worker '000001' of run X has no saved policy");
    expect(out.classList.contains("nbt-error-line")).toBe(true);
    expect(el.querySelector(".nbt-evaluate").disabled).toBe(false);
    cleanup();
  });

  it("Delete asks first with the per-worker summary, then sends it; afterwards nothing is offered", async () => {
    const { model, el, cleanup } = setup();
    model.kernel.delete = (params, id) => {
      model.respond(id, { run_id: params.run_id, counts: { episodes: 11, workers: 2, runs: 1 } });
      model.set("closure", "deleted: 11 episodes, 2 workers, 1 runs");
    };
    await frame();
    model.receive(ENDED);
    await frame();
    el.querySelector(".nbt-closure-actions .nbt-delete").click();
    await tick(5);
    const confirm = el.querySelector(".nbt-closure-actions .nbt-confirm");
    expect(confirm.hidden).toBe(false);
    expect([...confirm.querySelectorAll("tr[data-worker]")].map((r) => r.dataset.worker)).toEqual(["000001", "000007"]);
    expect(confirm.textContent).toContain("2 workers, 11 episodes, 38 steps and the run folder (2.0 KiB) will be deleted.");
    expect(model.requests("delete")).toHaveLength(0);
    confirm.querySelector(".nbt-confirm-yes").click();
    await tick(5);
    expect(model.requests("delete")[0].content.params).toEqual({ run_id: RUN });
    expect(el.querySelector(".nbt-closure-out").textContent).toBe(`deleted run ${RUN}: 11 episodes, 2 workers, 1 runs`);
    for (const cls of ["nbt-evaluate", "nbt-keep", "nbt-archive", "nbt-delete"]) expect(el.querySelector(`.nbt-closure-actions .${cls}`).disabled).toBe(true);
    cleanup();
  });

  it("Archive offers the archive file and sends what is typed; Keep sends keep", async () => {
    const { model, el, cleanup } = setup();
    model.kernel.archive = (_p, id) => model.fail(id, "StoreError", "disk full");
    model.kernel.keep = (_p, id) => { model.respond(id, { run_id: RUN }); model.set("closure", "kept"); };
    await frame();
    model.receive(ENDED);
    await frame();
    el.querySelector(".nbt-closure-actions .nbt-archive").click();
    await tick(5);
    const input = el.querySelector(".nbt-closure-actions .nbt-archive-to");
    expect(input.value).toBe("/tmp/x-archive.sqlite");
    input.value = "cold.sqlite";
    el.querySelector(".nbt-closure-actions .nbt-confirm-yes").click();
    await tick(5);
    expect(model.requests("archive")[0].content.params).toEqual({ run_id: RUN, to: "cold.sqlite" });
    expect(el.querySelector(".nbt-closure-out").textContent).toBe("Archive failed: StoreError: disk full");
    el.querySelector(".nbt-closure-actions .nbt-keep").click();
    await tick(5);
    expect(model.requests("keep")).toHaveLength(1);
    expect(el.querySelector(".nbt-closure-out").textContent).toBe("kept: the run stays in its database");
    expect(el.querySelector(".nbt-closure-actions .nbt-confirm").hidden).toBe(true);
    cleanup();
  });

  it("cleanup removes its listeners", async () => {
    const { model, cleanup } = setup();
    await frame();
    cleanup();
    expect(model.listenerCount("change:closure")).toBe(0);
    expect(model.listenerCount("change:eval_dashboard")).toBe(0);
  });
});
