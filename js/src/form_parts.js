// Pure helpers of the TrainForm view: which environments to offer, the folded form's one
// line, and bringing the launched run's dashboard into view.

/**
 * What a built-in agent handles, as the kernel sends it (`agent_spaces`, from
 * nbtrain.widgets.envinfo.AGENT_SPACES): observation and action kinds, and observation
 * kinds allowed once an agent kwarg is given (a tabular agent on Box needs `bins`).
 * @typedef {{obs: string[], action: string[], obs_with: Record<string, string>}} AgentSpaces
 */

/**
 * Env ids the agent can handle, filtered by a search text (case-insensitive substring).
 * An agent the kernel lists no spaces for (random, your own) gets every environment.
 * @param {Array<{id: string, obs: string, action: string}>} envs
 * @param {string} agent
 * @param {string} search
 * @param {{spaces?: Record<string, AgentSpaces>, kwargs?: string}} [options] `kwargs`: the
 *   agent kwargs field as typed (JSON), to see which keys are given
 */
export function matchingEnvs(envs, agent, search, options = {}) {
  const needle = search.trim().toLowerCase();
  const needs = options.spaces?.[agent];
  const given = (/** @type {string} */ key) => new RegExp(`"${key}"\\s*:`).test(options.kwargs ?? "");
  /** @param {{obs: string, action: string}} e */
  const fits = (e) => {
    if (!needs) return true;
    if (!needs.action.includes(e.action)) return false;
    const key = needs.obs_with[e.obs];
    return needs.obs.includes(e.obs) || (key !== undefined && given(key));
  };
  return envs
    .filter(fits)
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

/**
 * The hyperparameter fields the chosen agent has, with its own defaults and help (the kernel
 * reads them from the agents' signatures); the others hide. A custom agent has none: it
 * takes Other agent kwargs.
 * @param {Map<string, {row: HTMLElement, input?: HTMLInputElement | HTMLSelectElement, help?: HTMLElement}>} fields
 * @param {Record<string, {placeholder: string, help: string}> | undefined} hyper the agent's
 */
export function showAgentFields(fields, hyper) {
  for (const [name, f] of fields) {
    if (f.row.dataset.group !== "tabular") continue;
    const own = hyper?.[name];
    f.row.hidden = !own;
    if (!own) continue;
    if (f.input instanceof HTMLInputElement) f.input.placeholder = own.placeholder;
    if (f.help) f.help.textContent = own.help;
  }
}
