// EpisodeViewer view: a stored episode replayed with a slider. Step 0 is the start; step k
// shows the state after the k-th action (the stored observation is the one the step led to).

import { ansiToHtml } from "./ansi.js";
import { formatNumber } from "./format.js";
import { renderGrid, startPosition } from "./grid.js";
import { errorArea, h, keepKeysInside } from "./protocol.js";

/** @typedef {import("./protocol.js").WidgetModel} WidgetModel */

/**
 * What to show at slider position `step` (0..n).
 * @param {any} ep the `episode` trait
 * @param {number} step
 */
export function frameAt(ep, step) {
  const n = ep.action?.length ?? 0;
  const k = Math.max(0, Math.min(step, n));
  if (k === 0) {
    return { step: 0, n, position: ep.grid ? startPosition(ep.grid) : null, obs: null, action: null, reward: null, cumulative: 0, end: "" };
  }
  const i = k - 1;
  const action = ep.action[i];
  const label = ep.action_labels?.[action];
  return {
    step: k,
    n,
    position: typeof ep.obs[i] === "number" ? ep.obs[i] : null,
    obs: ep.obs[i],
    action: label ? `${action} (${label})` : JSON.stringify(action),
    reward: ep.reward[i],
    cumulative: ep.cumulative[i],
    end: ep.terminated[i] ? "terminated" : ep.truncated[i] ? "truncated" : "",
  };
}

/** @param {{model: WidgetModel, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", "nbt-root nbt-viewer");
  el.append(root);
  const title = h("div", "nbt-title");
  root.append(title);
  const cleanupError = errorArea(model, root);
  const controls = h("div", "nbt-controls");
  const play = /** @type {HTMLButtonElement} */ (h("button", "nbt-play"));
  play.type = "button";
  play.title = "play / pause";
  // drawn, not a font glyph: "⏸" is an empty box in many fonts
  /** @param {boolean} on */
  const showPlaying = (on) => {
    play.dataset.state = on ? "pause" : "play";
    play.setAttribute("aria-label", on ? "pause" : "play");
    play.innerHTML = on
      ? '<svg viewBox="0 0 10 10" width="10" height="10" aria-hidden="true"><rect x="1.5" y="1" width="2.5" height="8" fill="currentColor"/><rect x="6" y="1" width="2.5" height="8" fill="currentColor"/></svg>'
      : '<svg viewBox="0 0 10 10" width="10" height="10" aria-hidden="true"><path d="M2 1 L9 5 L2 9 Z" fill="currentColor"/></svg>';
  };
  showPlaying(false);
  const releaseKeys = keepKeysInside(root);
  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = "0";
  slider.setAttribute("aria-label", "step");
  const counter = h("span", "nbt-counter");
  controls.append(play, slider, counter);
  const stage = h("div", "nbt-stage");
  const info = h("dl", "nbt-stats");
  root.append(controls, stage, info);
  /** @type {any} */
  let playing = null;

  function draw() {
    const ep = model.get("episode") ?? {};
    const f = frameAt(ep, model.get("step") ?? 0);
    title.textContent = `${ep.env_id ?? ""} · run ${model.get("run_id")} · worker ${model.get("worker_id")} · episode ${model.get("ep_index")}`;
    slider.max = String(f.n);
    slider.value = String(f.step);
    counter.textContent = `step ${f.step} / ${f.n}`;
    if (ep.grid) renderGrid(stage, ep.grid, f.position);
    else {
      const pre = h("pre", "nbt-ansi");
      pre.innerHTML = ansiToHtml(f.obs === null ? "(start)" : JSON.stringify(f.obs));
      stage.replaceChildren(pre);
    }
    info.replaceChildren();
    for (const [k, v] of [["action", f.action ?? "–"], ["reward", formatNumber(f.reward)], ["return so far", formatNumber(f.cumulative)], ["end", f.end || "–"]]) {
      info.append(h("dt", "", k), h("dd", "", String(v)));
    }
  }

  /** @param {number} step */
  function go(step) {
    model.set("step", step);
    model.save_changes();
    draw();
  }
  slider.addEventListener("input", () => go(Number(slider.value)));
  play.addEventListener("click", () => {
    if (playing) {
      clearInterval(playing);
      playing = null;
      showPlaying(false);
      return;
    }
    const n = (model.get("episode")?.action ?? []).length;
    if ((model.get("step") ?? 0) >= n) go(0);
    showPlaying(true);
    playing = setInterval(() => {
      const next = (model.get("step") ?? 0) + 1;
      if (next > n) {
        clearInterval(playing);
        playing = null;
        showPlaying(false);
        return;
      }
      go(next);
    }, 250);
  });
  model.on("change:step", draw);
  model.on("change:episode", draw);
  draw();
  return () => {
    if (playing) clearInterval(playing);
    model.off("change:step", draw);
    model.off("change:episode", draw);
    cleanupError();
    releaseKeys();
  };
}

export default { render };
