// The committed bundle (what anywidget loads) renders, not just the sources.
import { describe, expect, it } from "vitest";
import dashboard from "../../src/nbtrain/static/dashboard.js";
import form from "../../src/nbtrain/static/form.js";
import viewer from "../../src/nbtrain/static/viewer.js";
import { FakeModel, loadFixture, tick } from "./fake_model.js";

const fx = loadFixture();

describe("bundle", () => {
  it("dashboard.js renders a snapshot", async () => {
    const model = new FakeModel({ run_id: "R", worker_ids: ["000001", "000007"], vocab: fx.vocab });
    model.kernel.hello = (_p, id) => model.respond(id, fx.snapshot.content, fx.snapshot.buffers);
    const el = document.createElement("div");
    const cleanup = dashboard.render({ model, el });
    await tick(30);
    expect(el.querySelectorAll(".nbt-tab")).toHaveLength(3);
    cleanup();
  });

  it("form.js and viewer.js render", () => {
    const model = new FakeModel({
      sections: fx.form.sections, agents: ["q_learning"], envs: fx.form.envs,
      values: { agent: "q_learning", workers_mode: "count", workers_count: "1", workers_list: [""] },
      errors: {}, general_errors: [], workers_preview: fx.form.count_preview, valid: true,
    });
    const el = document.createElement("div");
    form.render({ model, el });
    expect(el.querySelector(".nbt-launch").disabled).toBe(false);
    const vmodel = new FakeModel({ run_id: "R", worker_id: "000001", ep_index: 0, step: 0,
      episode: { env_id: "X", grid: null, action: [0], reward: [1], cumulative: [1], obs: [[0.1]], terminated: [true], truncated: [false] } });
    const vel = document.createElement("div");
    viewer.render({ model: vmodel, el: vel });
    expect(vel.querySelector(".nbt-counter").textContent).toBe("step 0 / 1");
  });
});
