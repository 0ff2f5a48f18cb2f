import { describe, expect, it } from "vitest";
import viewer, { frameAt } from "../src/viewer.js";
import { FakeModel } from "./fake_model.js";

const episode = {
  env_id: "FrozenLake-v1",
  grid: { kind: "frozenlake", rows: ["SFFF", "FHFH", "FFFH", "HFFG"] },
  action_labels: ["Left", "Down", "Right", "Up"],
  step_index: [0, 1],
  action: [1, 2],
  reward: [0, 1],
  cumulative: [0, 1],
  obs: [4, 5],
  terminated: [false, true],
  truncated: [false, false],
};

describe("viewer", () => {
  it("step 0 is the start, step k the state after action k", () => {
    expect(frameAt(episode, 0)).toMatchObject({ step: 0, n: 2, position: 0, action: null });
    expect(frameAt(episode, 2)).toMatchObject({ position: 5, action: "2 (Right)", reward: 1, cumulative: 1, end: "terminated" });
    expect(frameAt(episode, 99).step).toBe(2);
  });

  it("a reward that arrived as the string \"nan\" is shown, not thrown on", () => {
    const odd = { ...episode, reward: [0, "nan"], cumulative: [0, "nan"] };
    const model = new FakeModel({ run_id: "R", worker_id: "000001", ep_index: 3, episode: odd, step: 2 });
    const el = document.createElement("div");
    viewer.render({ model, el });
    expect(el.querySelector(".nbt-stats").textContent).toContain("rewardnan");
  });

  it("the slider moves the shared step and redraws the grid", () => {
    const model = new FakeModel({ run_id: "R", worker_id: "000001", ep_index: 3, episode, step: 0 });
    const el = document.createElement("div");
    viewer.render({ model, el });
    const slider = el.querySelector('input[type="range"]');
    expect(slider.max).toBe("2");
    slider.value = "1";
    slider.dispatchEvent(new Event("input"));
    expect(model.get("step")).toBe(1);
    expect(el.querySelector(".nbt-counter").textContent).toBe("step 1 / 2");
    const cells = [...el.querySelectorAll(".nbt-cell")];
    expect(cells.findIndex((c) => c.classList.contains("nbt-agent"))).toBe(4);
    expect(el.querySelector(".nbt-stats").textContent).toContain("1 (Down)");
  });

  it("play and pause are drawn (no font glyph), and arrow keys on the slider stay inside", () => {
    const model = new FakeModel({ run_id: "R", worker_id: "000001", ep_index: 3, episode, step: 0 });
    const el = document.createElement("div");
    document.body.append(el);
    const cleanup = viewer.render({ model, el });
    const play = el.querySelector(".nbt-play");
    expect(play.dataset.state).toBe("play");
    expect(play.querySelector("svg path")).not.toBeNull();
    play.click();
    expect(play.dataset.state).toBe("pause");
    expect(play.querySelectorAll("svg rect")).toHaveLength(2);
    expect(play.textContent).toBe("");
    play.click();
    const seen = [];
    const outer = (e) => seen.push(e.key);
    document.body.addEventListener("keydown", outer);
    el.querySelector('input[type="range"]').dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    document.body.removeEventListener("keydown", outer);
    expect(seen).toEqual([]);
    cleanup();
  });
});

