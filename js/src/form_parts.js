// Pure helpers of the TrainForm view: which environments to offer, the folded form's one
// line, and bringing the launched run's dashboard into view.

/**
 * Env ids the agent can handle, filtered by a search text (case-insensitive substring).
 * Tabular agents (the kernel says which) get discrete actions, and discrete observations
 * unless `bins` turns continuous ones into cells.
 * @param {Array<{id: string, obs: string, action: string}>} envs
 * @param {string} agent
 * @param {string} search
 * @param {{tabular?: string[], bins?: boolean}} [options]
 */
export function matchingEnvs(envs, agent, search, options = {}) {
  const needle = search.trim().toLowerCase();
  const tabular = (options.tabular ?? ["q_learning", "sarsa", "expected_sarsa"]).includes(agent);
  return envs
    .filter((e) => !tabular || (e.action === "discrete" && (e.obs === "discrete" || (options.bins && e.obs === "box"))))
    .map((e) => e.id)
    .filter((id) => id.toLowerCase().includes(needle));
}

/**
 * The folded form's one line: what would run.
 * @param {Record<string, any>} v
 */
export function summaryLine(v) {
  const workers = v.workers_mode === "list" ? (v.workers_list ?? []).length : Number(v.workers_count || 1);
  const parts = [v.env_id || "no environment", v.agent, `${v.episodes || "?"} episodes × ${workers} worker${workers === 1 ? "" : "s"}`];
  if (v.step_delay) parts.push(`step delay ${v.step_delay} s`);
  if (v.backend === "ray") parts.push("on Ray");
  return parts.join(" · ");
}

/**
 * Bring the run's dashboard (a sibling widget under the form) into view once it renders.
 * @param {HTMLElement} el @param {string} runId
 */
export function revealDashboard(el, runId) {
  const box = el.closest(".nbtrain-train-form") ?? el.parentElement?.parentElement;
  if (!box) return;
  const started = Date.now();
  const look = () => {
    const titles = [...box.querySelectorAll(".nbt-dashboard .nbt-title")];
    const dash = titles.find((t) => (t.textContent ?? "").includes(runId))?.closest(".nbt-dashboard");
    if (dash) dash.scrollIntoView?.({ block: "nearest", behavior: "smooth" });
    else if (Date.now() - started < 5000) setTimeout(look, 100);
  };
  look();
}
