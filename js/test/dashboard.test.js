import { describe, expect, it, vi } from "vitest";
import dashboard, { DashboardState, statusLine, vocabulary } from "../src/dashboard.js";
import { FakeModel, loadFixture, tick } from "./fake_model.js";

const fx = loadFixture();

function mount(model) {
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = dashboard.render({ model, el });
  return { el, cleanup };
}

function liveModel() {
  const model = new FakeModel({ run_id: "01J0000000000000000000TEST", worker_ids: ["000001", "000007"], vocab: fx.vocab });
  model.kernel.hello = (_p, id) => model.respond(id, fx.snapshot.content, fx.snapshot.buffers);
  return model;
}

const frame = () => tick(30);

describe("DashboardState", () => {
  it("ignores deltas until the snapshot and those it already covers", () => {
    const s = new DashboardState(vocabulary(fx.vocab));
    expect(s.applyDelta(fx.deltas[0].content, fx.deltas[0].buffers)).toBe("ignored");
    s.applySnapshot(fx.snapshot.content, fx.snapshot.buffers);
    expect(s.seq).toBe(2);
    expect(s.applyDelta(fx.deltas[1].content, fx.deltas[1].buffers)).toBe("ignored");
    expect(s.applyDelta(fx.deltas[2].content, fx.deltas[2].buffers)).toBe("ok");
    const w1 = s.worker("000001");
    expect(w1.curve.ep).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(w1.curve.mean).toEqual([0, 1, 0, 1, 1, 1, 0]);
    expect(w1.curve.roll.at(-1)).toBeCloseTo(4 / 7, 12); // mean of all 7 episodes so far
    expect(w1.recent.map((r) => r.ep_index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(w1.grid.kind).toBe("frozenlake");
    expect(w1.position).toBe(8);
  });

  it("deltas alone rebuild what the snapshot holds", () => {
    const fromDeltas = new DashboardState(vocabulary(fx.vocab));
    fromDeltas.applySnapshot({ ...fx.snapshot.content, seq: 0, workers: {} }, []);
    for (const d of fx.deltas.slice(0, 2)) expect(fromDeltas.applyDelta(d.content, d.buffers)).toBe("ok");
    const fromSnapshot = new DashboardState(vocabulary(fx.vocab));
    fromSnapshot.applySnapshot(fx.snapshot.content, fx.snapshot.buffers);
    for (const wid of ["000001", "000007"]) {
      const a = fromDeltas.worker(wid);
      const b = fromSnapshot.worker(wid);
      expect(a.curve.ep).toEqual(b.curve.ep);
      expect(a.curve.mean).toEqual(b.curve.mean);
      expect(a.curve.roll).toEqual(b.curve.roll);
      expect(a.scalars).toEqual(b.scalars);
      expect(a.recent).toEqual(b.recent);
    }
  });

  it("asks for a resync when a delta is missing", () => {
    const s = new DashboardState(vocabulary(fx.vocab));
    s.applySnapshot({ ...fx.snapshot.content, seq: 0, workers: {} }, []);
    expect(s.applyDelta(fx.deltas[1].content, fx.deltas[1].buffers)).toBe("resync");
  });

  it("status line shows pid and exit code when known", () => {
    expect(statusLine({ status: "failed", pid: 12, exit_code: 1 }, "pending")).toBe("failed · pid 12 · exit code 1");
    expect(statusLine({}, fx.vocab.initial)).toBe("pending");
  });
});

describe("dashboard view", () => {
  it("says hello on render and shows one tab per worker plus All workers", async () => {
    const model = liveModel();
    const { el } = mount(model);
    expect(model.requests("hello")).toHaveLength(1);
    await frame();
    const tabs = [...el.querySelectorAll(".nbt-tab")].map((t) => t.textContent);
    expect(tabs).toEqual(["All workers", "000001", "000007"]);
    expect(el.querySelector(".nbt-summary").textContent).toContain("000007");
  });

  it("applies live deltas and shows the worker's status, episodes and grid", async () => {
    const model = liveModel();
    const { el } = mount(model);
    await frame();
    model.receive(fx.deltas[2].content, fx.deltas[2].buffers);
    el.querySelector('.nbt-tab[data-key="000001"]').click();
    await frame();
    expect(el.querySelector(".nbt-status").textContent).toBe("running · pid 4242");
    expect(el.querySelector(".nbt-stats").textContent).toContain("7 / 10");
    const rows = el.querySelectorAll(".nbt-recent tr");
    expect(rows).toHaveLength(8); // header + 7 episodes, newest first
    expect(rows[1].textContent).toContain("6");
    expect(el.querySelectorAll(".nbt-cell")).toHaveLength(16);
    expect(el.querySelector(".nbt-agent")).not.toBeNull();
    expect(model.requests("focus").at(-1).content.params).toMatchObject({ worker_id: "000001" });
  });

  it("re-asks for a snapshot when deltas arrive out of order", async () => {
    const model = liveModel();
    mount(model);
    await frame();
    model.receive({ ...fx.deltas[2].content, seq: 9 }, fx.deltas[2].buffers);
    expect(model.requests("hello")).toHaveLength(2);
  });

  it("Stop sends the worker id and reports the result", async () => {
    const model = liveModel();
    model.kernel.stop = (p, id) => model.respond(id, { statuses: { [p.worker_id]: "stopped" } });
    const { el } = mount(model);
    await frame();
    el.querySelector('.nbt-tab[data-key="000007"]').click();
    await frame();
    el.querySelector(".nbt-stop").click();
    expect(model.requests("stop")[0].content.params).toEqual({ worker_id: "000007" });
    await frame();
    expect(el.querySelector(".nbt-stop-out").textContent).toBe("000007: stopped");
  });

  it("Stop all sends no worker id; a failure is shown, not swallowed", async () => {
    const model = liveModel();
    model.kernel.stop = (_p, id) => model.fail(id, "RuntimeError", "cannot stop");
    const { el } = mount(model);
    await frame();
    el.querySelector(".nbt-stop").click();
    await frame();
    expect(model.requests("stop")[0].content.params).toEqual({ worker_id: null });
    expect(el.querySelector(".nbt-stop-out").textContent).toContain("stop failed: RuntimeError: cannot stop");
  });

  it("a failed worker shows its error and traceback", async () => {
    const model = liveModel();
    const { el } = mount(model);
    await frame();
    model.receive({ kind: "delta", seq: 3, workers: { "000007": { scalars: { status: "failed", exit_code: 1, error: "ValueError: boom", traceback: "Traceback...\nValueError: boom" } } } });
    el.querySelector('.nbt-tab[data-key="000007"]').click();
    // The redraw waits for an animation frame: poll instead of guessing its delay (a fixed
    // 30 ms wait failed once on a loaded machine).
    await vi.waitFor(() => expect(el.querySelector(".nbt-error-line")?.textContent).toBe("ValueError: boom"), { timeout: 2000 });
    expect(el.querySelector(".nbt-traceback").textContent).toContain("Traceback");
    expect(el.querySelector(".nbt-stop").disabled).toBe(true);
    expect(el.querySelector('.nbt-tab[data-key="000007"]').dataset.status).toBe("failed");
  });

  it("a second view of the same model gets its own snapshot", async () => {
    const model = liveModel();
    const a = mount(model);
    const b = mount(model);
    await frame();
    expect(model.requests("hello")).toHaveLength(2);
    expect(a.el.querySelectorAll(".nbt-tab")).toHaveLength(3);
    expect(b.el.querySelectorAll(".nbt-tab")).toHaveLength(3);
  });

  it("cleanup removes listeners and releases focus", async () => {
    const model = liveModel();
    const { cleanup } = mount(model);
    await frame();
    cleanup();
    expect(model.listenerCount("msg:custom")).toBe(0);
    expect(model.requests("focus").at(-1).content.params.worker_id).toBeNull();
  });

  it("the overview shows progress across workers as n / total with a bar", async () => {
    const model = liveModel();
    const { el } = mount(model);
    await frame();
    model.receive(fx.deltas[2].content, fx.deltas[2].buffers);
    await frame();
    expect(el.querySelector(".nbt-progress-text").textContent).toMatch(/^11 \/ 200 episodes/);
    expect(Number(el.querySelector(".nbt-progress").value)).toBeCloseTo(11 / 200, 6);
  });

  it("failures show in red with their first error line; the end shows the outcome and a closure summary", async () => {
    const model = liveModel();
    const { el } = mount(model);
    await frame();
    model.receive({ kind: "delta", seq: 3, outcome: "1 failed: ValueError: boom (1 other completed)", workers: {
      "000001": { scalars: { status: "completed", exit_code: 0, mean_return: 0.5, last100_return: 0.75, steps_per_s: 812.5 } },
      "000007": { scalars: { status: "failed", exit_code: 1, error: "ValueError: boom\nmore", mean_return: 0.25, last100_return: 0.25 } },
    } });
    await frame();
    expect([...el.querySelectorAll(".nbt-failures li")].map((li) => li.textContent)).toEqual(["000007 failed: ValueError: boom"]);
    expect(el.querySelector(".nbt-outcome").textContent).toBe("1 failed: ValueError: boom (1 other completed)");
    expect(el.querySelector(".nbt-outcome").classList.contains("nbt-failed")).toBe(true);
    const caption = el.querySelector(".nbt-summary caption").textContent;
    expect(caption).toContain("Run ended");
    const rows = [...el.querySelectorAll(".nbt-summary tr.nbt-closure-row")].map((tr) => [...tr.children].map((td) => td.textContent));
    expect(rows[0]).toEqual(["000001", "completed", "0", "6", "2", "812.5", "0.500", "0.667", "0.750"]);
    expect(rows[1].slice(0, 3)).toEqual(["000007", "failed", "1"]);
    expect(el.querySelector(".nbt-summary tr.nbt-row-failed")).not.toBeNull();
  });

  it("statuses, the rolling window and the recent count come from the kernel's vocab", async () => {
    const model = liveModel();
    model.state.vocab = { ...fx.vocab, rolling: 50, recent: 2, initial: "queued", statuses: ["queued", ...fx.vocab.statuses.slice(1)] };
    model.state.worker_ids = ["000001", "000007", "000009"];
    const { el } = mount(model);
    await frame();
    model.receive({ kind: "delta", seq: 3, workers: { "000009": {} } }); // heard of, no status yet
    await frame();
    expect(el.querySelector(".nbt-summary").textContent).toContain("mean of last 50");
    expect(el.querySelector('.nbt-tab[data-key="000009"]').dataset.status).toBe("queued");
    el.querySelector('.nbt-tab[data-key="000001"]').click();
    await frame();
    expect(el.querySelectorAll(".nbt-recent tr").length).toBe(1 + 2); // header + the last 2
  });

  it("draws only the grid kinds the kernel names", async () => {
    const model = liveModel();
    model.state.vocab = { ...fx.vocab, grid_kinds: ["taxi"] };
    const { el } = mount(model);
    await frame();
    el.querySelector('.nbt-tab[data-key="000001"]').click();
    await frame();
    expect(el.querySelector(".nbt-grid")).toBeNull();
    expect(el.querySelector(".nbt-env").textContent).toBe("No drawing for grid kind frozenlake (drawn: taxi).");
  });

  it("without the kernel's vocab it says so instead of guessing", () => {
    const model = liveModel();
    delete model.state.vocab;
    const { el } = mount(model);
    expect(el.textContent).toContain("Cannot show this dashboard: the kernel sent no statuses");
    expect(model.requests("hello")).toHaveLength(0);
  });

  it("worker colours come from the kernel and stay with the worker id", async () => {
    const model = liveModel();
    const { el } = mount(model);
    await frame();
    const tab = el.querySelector('.nbt-tab[data-key="000007"]');
    expect(tab.style.getPropertyValue("--nbt-worker")).toBe(fx.snapshot.content.colours["000007"]);
  });

  it("hides the static twin displayed after it (that table is for a saved notebook)", async () => {
    const area = document.createElement("div");
    const child = document.createElement("div");
    child.className = "jp-OutputArea-child";
    const twin = document.createElement("div");
    twin.className = "jp-OutputArea-child";
    twin.innerHTML = "<div class='nbtrain-static'><table></table></div>";
    const other = document.createElement("div");
    other.className = "jp-OutputArea-child";
    area.append(child, twin, other);
    document.body.append(area);
    const el = document.createElement("div");
    child.append(el);
    dashboard.render({ model: liveModel(), el });
    await frame();
    expect(twin.style.display).toBe("none");
    expect(other.style.display).toBe("");
  });
});


describe("dashboard view: resyncs, odd numbers, frames, accessibility", () => {
  /** A copy of the fixture's snapshot with worker 000001's scalars changed. */
  function snapshotWith(scalars, extra = {}) {
    const s = fx.snapshot.content;
    const w = s.workers["000001"];
    return { ...s, ...extra, workers: { ...s.workers, "000001": { ...w, scalars: { ...w.scalars, ...scalars } } } };
  }
  const episodes = (el) => el.querySelector(".nbt-stats")?.textContent.match(/episodes(\d+) \/ 100/)?.[1];
  // The redraw waits for an animation frame: poll rather than guess its delay.
  const until = (check) => vi.waitFor(check, { timeout: 2000 });
  const drawn = (el) => until(() => expect(el.querySelectorAll(".nbt-tab")).toHaveLength(3));

  it("a worker tab built before a resync shows the new snapshot and the deltas after it", async () => {
    // A run from the store: snapshot seq 0, and every change nudges the view with seq 2, 4, …
    const model = liveModel();
    let snap = snapshotWith({}, { seq: 0, live: false });
    model.kernel.hello = (_p, id) => model.respond(id, snap, fx.snapshot.buffers);
    const { el } = mount(model);
    await drawn(el);
    el.querySelector('.nbt-tab[data-key="000001"]').click();
    await until(() => expect(episodes(el)).toBe("6"));
    snap = snapshotWith({ episodes_done: 8, pid: 5151 }, { seq: 0, live: false });
    model.receive({ kind: "delta", seq: 2, workers: {} });
    await until(() => expect(episodes(el)).toBe("8"));
    expect(model.requests("hello")).toHaveLength(2);
    expect(el.querySelector(".nbt-status").textContent).toBe("running · pid 5151");
    model.receive({ kind: "delta", seq: 1, workers: { "000001": { scalars: { episodes_done: 9 } } } });
    await until(() => expect(episodes(el)).toBe("9"));
    // the overview reads the same state
    el.querySelector('.nbt-tab[data-key="__all__"]').click();
    await until(() => expect(el.querySelector(".nbt-progress-text")?.textContent).toMatch(/^13 \/ 200 episodes/));
  });

  it("asks for at most one snapshot at a time, and once more if a gap came meanwhile", async () => {
    const model = liveModel();
    const pending = [];
    const { el } = mount(model);
    await drawn(el);
    model.kernel.hello = (_p, id) => pending.push(id);
    model.receive({ kind: "delta", seq: 9, workers: {} });
    await tick();
    model.receive({ kind: "delta", seq: 12, workers: {} });
    model.receive({ kind: "delta", seq: 15, workers: {} });
    await tick();
    expect(model.requests("hello")).toHaveLength(2); // the first, and one for the gaps
    model.respond(pending.shift(), { ...fx.snapshot.content, seq: 15 }, fx.snapshot.buffers);
    await tick();
    expect(model.requests("hello")).toHaveLength(3); // the queued one, after the answer
    model.respond(pending.shift(), { ...fx.snapshot.content, seq: 15 }, fx.snapshot.buffers);
    await tick();
    expect(model.requests("hello")).toHaveLength(3);
    await drawn(el);
  });

  it("NaN and inf sent as strings (jupyter_client's JSON) draw as text, and the closure still shows", async () => {
    const model = liveModel();
    const { el } = mount(model);
    await drawn(el);
    model.receive({ kind: "delta", seq: 3, outcome: "completed in 1.0 s", workers: {
      "000001": { scalars: { status: "completed", exit_code: 0, steps_per_s: "nan", epsilon: "inf", mean_return: "nan", last100_return: "-inf" } },
      "000007": { scalars: { status: "completed", exit_code: 0 } },
    } });
    await until(() => expect(el.querySelector(".nbt-closure-actions").hidden).toBe(false));
    const row = [...el.querySelectorAll(".nbt-summary tr.nbt-closure-row")][0];
    expect([...row.children].map((td) => td.textContent)).toEqual(["000001", "completed", "0", "6", "2", "nan", "nan", "0.667", "-inf"]);
    el.querySelector('.nbt-tab[data-key="000001"]').click();
    await until(() => expect(el.querySelector(".nbt-stats")?.textContent).toContain("εinf"));
  });

  it("says no frame yet when the run records frames, and how to get them when it does not", async () => {
    const model = liveModel();
    let snap = { ...fx.snapshot.content, frames: "rgb_array" };
    model.kernel.hello = (_p, id) => model.respond(id, snap, fx.snapshot.buffers);
    const { el } = mount(model);
    await drawn(el);
    el.querySelector('.nbt-tab[data-key="000007"]').click(); // no grid, no frame yet
    await until(() => expect(el.querySelector(".nbt-env")?.textContent).toMatch(/^No frame yet/));
    snap = { ...fx.snapshot.content, frames: "none", seq: 20 };
    model.receive({ kind: "delta", seq: 20, workers: {} });
    await until(() => expect(el.querySelector(".nbt-env").textContent).toMatch(/^No frames: set telemetry frames/));
  });

  it("revokes an rgb frame's object URL when the next frame replaces it and when the view goes", async () => {
    const created = [];
    const revoked = [];
    const create = vi.spyOn(URL, "createObjectURL").mockImplementation(() => { created.push(`blob:nbt/${created.length}`); return created.at(-1); });
    const revoke = vi.spyOn(URL, "revokeObjectURL").mockImplementation((u) => { revoked.push(u); });
    try {
      const model = liveModel();
      const { el, cleanup } = mount(model);
      await drawn(el);
      el.querySelector('.nbt-tab[data-key="000007"]').click();
      const png = new DataView(new Uint8Array([137, 80, 78, 71]).buffer);
      const rgb = (seq, step) => model.receive({ kind: "delta", seq, workers: { "000007": { frame: { kind: "rgb_array", ep_index: 0, step_index: step, png: { buffer: 0, dtype: "png" }, shape: [1, 1, 3] } } } }, [png]);
      rgb(3, 1);
      await until(() => expect(el.querySelector(".nbt-frame")?.src).toBe("blob:nbt/0"));
      model.receive({ kind: "delta", seq: 4, workers: { "000007": { frame: { kind: "ansi", ep_index: 0, step_index: 2, text: "SFFF" } } } });
      await until(() => expect(revoked).toEqual(["blob:nbt/0"])); // the ansi frame replaced it
      rgb(5, 3);
      await until(() => expect(el.querySelector(".nbt-frame")?.src).toBe("blob:nbt/1"));
      cleanup();
      expect(revoked).toEqual(["blob:nbt/0", "blob:nbt/1"]);
    } finally {
      create.mockRestore();
      revoke.mockRestore();
    }
  });

  it("worker tabs say their worker and status to a screen reader, kept current", async () => {
    const model = liveModel();
    const { el } = mount(model);
    await drawn(el);
    const tab = el.querySelector('.nbt-tab[data-key="000007"]');
    await until(() => expect(tab.getAttribute("aria-label")).toBe("000007: running"));
    model.receive({ kind: "delta", seq: 3, workers: { "000007": { scalars: { status: "stopped" } } } });
    await until(() => expect(tab.getAttribute("aria-label")).toBe("000007: stopped"));
  });
});
