import { describe, expect, it } from "vitest";
import form, { matchingEnvs, summaryLine } from "../src/form.js";
import { FakeModel, loadFixture, tick } from "./fake_model.js";

const fx = loadFixture();

function formModel(values = {}) {
  return new FakeModel({
    sections: fx.form.sections,
    agent_help: fx.form.agent_help,
    tabular_agents: fx.form.tabular_agents,
    agent_spaces: fx.form.agent_spaces,
    agent_hyper: fx.form.agent_hyper,
    hints: {},
    agents: fx.form.agents,
    envs: fx.form.envs,
    values: {
      env_id: "FrozenLake-v1", env_kwargs: "", agent: "q_learning", alpha: "", gamma: "", epsilon: "",
      epsilon_min: "", epsilon_decay: "", agent_kwargs: "", name: "", episodes: "", max_steps_per_episode: "", seed: "",
      step_delay: "", mode: "train", policy_path: "", telemetry_steps: "", frames: "none", frame_every: "",
      workers_mode: "count", workers_count: "1", workers_list: [""], ...values,
    },
    errors: { episodes: "required: how many episodes each worker plays" },
    general_errors: [],
    workers_preview: fx.form.count_preview,
    valid: false,
    launched_run_id: "",
  });
}

function mount(model) {
  const el = document.createElement("div");
  document.body.append(el);
  form.render({ model, el });
  return el;
}

const field = (el, name) => el.querySelector(`.nbt-field[data-field="${name}"]`);

describe("env list", () => {
  const spaces = fx.form.agent_spaces;
  it("tabular agents see only discrete/discrete envs; search filters", () => {
    const ids = matchingEnvs(fx.form.envs, "q_learning", "", { spaces });
    expect(ids).toContain("FrozenLake-v1");
    expect(ids).not.toContain("CartPole-v1");
    expect(matchingEnvs(fx.form.envs, "random", "", { spaces })).toContain("CartPole-v1");
    expect(matchingEnvs(fx.form.envs, "random", "taxi", { spaces })).toEqual(["Taxi-v4"]);
  });

  it("tabular agents get Box observations once bins are given", () => {
    const ids = matchingEnvs(fx.form.envs, "sarsa", "", { spaces, kwargs: '{"bins": 8}' });
    expect(ids).toEqual(expect.arrayContaining(["CartPole-v1", "FrozenLake-v1", "MountainCar-v0"]));
    expect(ids).not.toContain("MountainCarContinuous-v0"); // continuous actions: still not
  });

  it("tile_sarsa sees Box observations with discrete actions only", () => {
    expect(matchingEnvs(fx.form.envs, "tile_sarsa", "", { spaces }).sort()).toEqual(["CartPole-v1", "MountainCar-v0"]);
  });
});

describe("form view", () => {
  it("renders every field with its error next to it; Launch disabled while invalid", () => {
    const model = formModel();
    const el = mount(model);
    for (const s of fx.form.sections) for (const f of s.fields) expect(field(el, f.name)).not.toBeNull();
    expect(field(el, "episodes").querySelector(".nbt-field-error").textContent).toContain("required");
    expect(field(el, "episodes").classList.contains("nbt-invalid")).toBe(true);
    expect(el.querySelector(".nbt-launch").disabled).toBe(true);
    model.set("errors", {});
    model.set("valid", true);
    expect(field(el, "episodes").querySelector(".nbt-field-error").textContent).toBe("");
    expect(el.querySelector(".nbt-launch").disabled).toBe(false);
  });

  it("typing sends values to Python (debounced) as text", async () => {
    const model = formModel();
    const el = mount(model);
    const input = field(el, "episodes").querySelector("input");
    input.value = "20";
    input.dispatchEvent(new Event("input"));
    input.value = "200";
    input.dispatchEvent(new Event("input"));
    expect(model.saves).toBe(0);
    await tick(200);
    expect(model.saves).toBe(1);
    expect(model.get("values").episodes).toBe("200");
  });

  it("hides hyperparameters for the random agent and refilters envs", () => {
    const model = formModel();
    const el = mount(model);
    expect(field(el, "alpha").hidden).toBe(false);
    const select = field(el, "agent").querySelector("select");
    select.value = "random";
    select.dispatchEvent(new Event("change"));
    expect(field(el, "alpha").hidden).toBe(true);
    const options = [...el.querySelectorAll(".nbt-env-option")].map((o) => o.textContent);
    expect(options).toContain("CartPole-v1");
  });

  it("tile_sarsa is offered with its own defaults and help, and the envs it can handle", () => {
    const model = formModel();
    const el = mount(model);
    const select = field(el, "agent").querySelector("select");
    expect([...select.options].map((o) => o.value)).toContain("tile_sarsa");
    expect(field(el, "alpha").querySelector("input").placeholder).toBe(fx.form.agent_hyper.q_learning.alpha.placeholder);
    select.value = "tile_sarsa";
    select.dispatchEvent(new Event("change"));
    const own = fx.form.agent_hyper.tile_sarsa;
    for (const name of ["alpha", "gamma", "epsilon"]) {
      expect(field(el, name).hidden).toBe(false);
      expect(field(el, name).querySelector("input").placeholder).toBe(own[name].placeholder);
      expect(field(el, name).querySelector(".nbt-help").textContent).toBe(own[name].help);
    }
    expect(own.alpha.placeholder).toBe("0.0625"); // the book's 0.5/8, from the signature
    expect(field(el, "agent").querySelector(".nbt-agent-help").textContent).toContain("tile-coded");
    const options = [...el.querySelectorAll(".nbt-env-option")].map((o) => o.textContent).sort();
    expect(options).toEqual(["CartPole-v1", "MountainCar-v0"]);
  });

  it("worker id rows show Python's normalized id or its error inline", () => {
    const model = formModel({ workers_mode: "list", workers_list: fx.form.workers_rows });
    model.state.workers_preview = fx.form.workers_preview;
    const el = mount(model);
    const rows = [...el.querySelectorAll(".nbt-worker-row")];
    expect(rows).toHaveLength(5);
    expect(rows[0].querySelector(".nbt-worker-id").textContent).toBe("→ 000007");
    expect(rows[1].querySelector(".nbt-worker-error").textContent).toContain("invalid worker id 'gpu-a'");
    expect(rows[1].classList.contains("nbt-invalid")).toBe(true);
    expect(rows[2].querySelector(".nbt-worker-id").textContent).toBe("→ 000001 (auto)");
    expect(rows[3].querySelector(".nbt-worker-error").textContent).toContain("duplicate");
    el.querySelector(".nbt-add-worker").click();
    expect(model.get("values").workers_list).toHaveLength(6);
  });

  it("the workers' count box and remove buttons are named for a screen reader", () => {
    const el = mount(formModel({ workers_mode: "list", workers_list: ["7", ""] }));
    expect(el.querySelector(".nbt-workers-count").getAttribute("aria-label")).toBe("number of workers");
    const removes = [...el.querySelectorAll(".nbt-remove-worker")].map((b) => b.getAttribute("aria-label"));
    expect(removes).toEqual(["remove worker 1", "remove worker 2"]);
  });

  it("Launch asks Python and reports the run or the error", async () => {
    const model = formModel();
    model.state.valid = true;
    model.kernel.launch = (_p, id) => model.respond(id, { run_id: "01JRUN", worker_ids: ["000001"] });
    const el = mount(model);
    el.querySelector(".nbt-launch").click();
    await tick(10);
    expect(el.querySelector(".nbt-launch-out").textContent).toBe("launched run 01JRUN (000001)");
    model.kernel.launch = (_p, id) => model.fail(id, "FileNotFoundError", "the folder of db='x/y' does not exist");
    el.querySelector(".nbt-launch").click();
    await tick(10);
    expect(el.querySelector(".nbt-launch-out").textContent).toContain("launch failed: FileNotFoundError");
  });

  it("after Launch the form folds to one line with Edit, and the line turns into the outcome", async () => {
    const model = formModel();
    model.state.valid = true;
    model.state.values = { ...model.state.values, env_id: "FrozenLake-v1", episodes: "300", workers_count: "2" };
    model.kernel.launch = (_p, id) => {
      model.set("run_status", "running 01JRUN (2 workers)…");
      model.respond(id, { run_id: "01JRUN", worker_ids: ["000001", "000002"] });
    };
    const el = mount(model);
    el.querySelector(".nbt-launch").click();
    await tick(10);
    const form = el.querySelector(".nbt-form");
    expect(form.classList.contains("nbt-is-folded")).toBe(true);
    expect(el.querySelector(".nbt-folded-text").textContent).toBe("FrozenLake-v1 · q_learning · 300 episodes × 2 workers");
    model.set("run_status", "launched run 01JRUN (000001, 000002) · 3 failed: ValueError: boom");
    const out = el.querySelector(".nbt-folded .nbt-launch-out");
    expect(out.textContent).toBe("launched run 01JRUN (000001, 000002) · 3 failed: ValueError: boom");
    expect(out.classList.contains("nbt-failed")).toBe(true);
    el.querySelector(".nbt-edit").click();
    expect(form.classList.contains("nbt-is-folded")).toBe(false);
  });

  it("Launch while a run from this form still goes asks: stop it, or run both", async () => {
    const model = formModel();
    model.state.valid = true;
    model.state.running_runs = [{ run_id: "01JOLD", label: "01JOLD (1 workers)" }];
    model.kernel.launch = (_p, id) => model.respond(id, { run_id: "01JNEW", worker_ids: ["000001"] });
    const el = mount(model);
    el.querySelector(".nbt-launch").click();
    await tick(10);
    expect(model.requests("launch")).toHaveLength(0); // nothing replaced silently
    expect(el.querySelector(".nbt-ask").hidden).toBe(false);
    expect(el.querySelector(".nbt-ask").textContent).toContain("01JOLD");
    el.querySelector(".nbt-ask-cancel").click();
    expect(el.querySelector(".nbt-ask").hidden).toBe(true);
    el.querySelector(".nbt-launch").click();
    el.querySelector(".nbt-ask-both").click();
    await tick(10);
    expect(model.requests("launch")[0].content.params).toEqual({ previous: "keep" });
    el.querySelector(".nbt-edit").click();
    el.querySelector(".nbt-launch").click();
    el.querySelector(".nbt-ask-stop").click();
    await tick(10);
    expect(model.requests("launch")[1].content.params).toEqual({ previous: "stop" });
  });

  it("values set from Python show up in the inputs", () => {
    const model = formModel();
    const el = mount(model);
    model.set("values", { ...model.get("values"), episodes: "77", agent: "random" });
    expect(field(el, "episodes").querySelector("input").value).toBe("77");
    expect(field(el, "alpha").hidden).toBe(true);
  });

  it("typing in the environment box filters the list", async () => {
    const model = formModel();
    const el = mount(model);
    const search = field(el, "env_id").querySelector("input");
    const all = field(el, "env_id").querySelectorAll(".nbt-env-option").length;
    expect(all).toBeGreaterThan(1);
    search.value = "cliff";
    search.dispatchEvent(new Event("input"));
    const shown = [...field(el, "env_id").querySelectorAll(".nbt-env-option")].map((o) => o.textContent);
    expect(shown).toEqual(["CliffWalking-v1"]);
  });

  it("a new environment clears its env kwargs and a name derived from the old one", async () => {
    const model = formModel({ env_kwargs: '{"map_name": "8x8"}', name: "FrozenLake-v1-q_learning" });
    const el = mount(model);
    [...field(el, "env_id").querySelectorAll(".nbt-env-option")].find((o) => o.textContent === "Taxi-v4").click();
    expect(model.get("values")).toMatchObject({ env_id: "Taxi-v4", env_kwargs: "", name: "" });
    expect(field(el, "env_kwargs").querySelector("input").value).toBe("");
  });

  it("a name the person chose survives an environment change", () => {
    const model = formModel({ name: "my experiment" });
    const el = mount(model);
    [...field(el, "env_id").querySelectorAll(".nbt-env-option")].find((o) => o.textContent === "Taxi-v4").click();
    expect(model.get("values").name).toBe("my experiment");
  });

  it("fields explain themselves: help, the agent in one line, what a blank step limit means", () => {
    const model = formModel();
    const el = mount(model);
    expect(field(el, "alpha").querySelector(".nbt-help").textContent).toContain("step size");
    expect(field(el, "gamma").querySelector(".nbt-help").textContent).toContain("discount");
    expect(field(el, "epsilon").querySelector(".nbt-help").textContent).toContain("exploration");
    expect(field(el, "agent").querySelector(".nbt-agent-help").textContent).toContain("Q-learning");
    model.set("hints", { max_steps_per_episode: "100 steps, as the config resolves it" });
    expect(field(el, "max_steps_per_episode").querySelector(".nbt-hint").textContent).toBe("blank: 100 steps, as the config resolves it");
    expect(field(el, "agent_kwargs")).not.toBeNull();
  });

  it("offers where the workers run when the kernel sends that choice, and sends the pick", () => {
    const backend = { name: "backend", label: "Workers run on", kind: "select", choices: ["local", "ray"], labels: { local: "this machine (subprocesses)", ray: "Ray" } };
    const model = formModel({ backend: "local" });
    model.state.sections = fx.form.sections.map((s) => (s.title === "Run" ? { ...s, fields: [...s.fields, backend] } : s));
    const el = mount(model);
    const select = field(el, "backend").querySelector("select");
    expect([...select.options].map((o) => [o.value, o.textContent])).toEqual([["local", "this machine (subprocesses)"], ["ray", "Ray"]]);
    select.value = "ray";
    select.dispatchEvent(new Event("change"));
    expect(model.get("values").backend).toBe("ray");
    expect(summaryLine(model.get("values"))).toContain("on Ray");
    expect(summaryLine({ ...model.get("values"), backend: "local" })).not.toContain("Ray");
    expect(field(mount(formModel()), "backend")).toBeNull(); // no Ray here: no choice
  });

  it("a worker row shows that worker's own settings", () => {
    const model = formModel({ workers_mode: "list", workers_list: ["1", "2"] });
    model.state.workers_preview = [
      { input: "1", id: "000001", auto: false, error: null },
      { input: "2", id: "000002", auto: false, error: null, overrides: "α 0.5" },
    ];
    const el = mount(model);
    const ids = [...el.querySelectorAll(".nbt-worker-id")].map((e) => e.textContent);
    expect(ids).toEqual(["→ 000001", "→ 000002 · own: α 0.5"]);
  });

  it("arrow keys in its dropdowns stay in the form (JupyterLab must not move the cell)", () => {
    const model = formModel();
    const el = mount(model);
    const seen = [];
    const outer = (e) => seen.push(e.key);
    document.body.addEventListener("keydown", outer);
    const select = field(el, "agent").querySelector("select");
    for (const key of ["ArrowDown", "ArrowUp"]) select.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
    select.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", shiftKey: true, bubbles: true }));
    document.body.removeEventListener("keydown", outer);
    expect(seen).toEqual(["Enter"]); // Shift+Enter still runs the cell
  });
});

describe("teardown", () => {
  it("removes every model listener the view added (the workers preview's too)", () => {
    const model = formModel();
    const el = document.createElement("div");
    document.body.append(el);
    const dispose = form.render({ model, el });
    expect(model.listenerCount("change:workers_preview")).toBe(1);
    dispose();
    const left = [...model.listeners.entries()].filter(([, set]) => set.size > 0).map(([name]) => name);
    expect(left).toEqual([]);
  });
});
