// TrainForm view: every TrainConfig field, per-field errors from Python, worker-id preview,
// and Launch (enabled only while the config validates). Values go to Python as typed text;
// Python parses, validates and echoes errors and normalized worker ids back.

import { matchingEnvs, revealDashboard, showAgentFields, summaryLine } from "./form_parts.js";
import { LONG_REQUEST_MS, createClient, errorArea, h, hideStaticTwin, keepKeysInside } from "./protocol.js";

export { matchingEnvs, summaryLine } from "./form_parts.js";

/** @typedef {import("./protocol.js").WidgetModel} WidgetModel */

const DEBOUNCE_MS = 120;
const MAX_ENV_MATCHES = 40;

/** @param {{model: WidgetModel, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("form", "nbt-root nbt-form");
  root.addEventListener("submit", (e) => e.preventDefault());
  el.append(root);
  const releaseKeys = keepKeysInside(root);
  hideStaticTwin(el);
  const cleanupError = errorArea(model, root);
  const general = h("ul", "nbt-general-errors");
  root.append(general);
  const client = createClient(model);
  /** @type {Record<string, any>} */
  let values = { ...model.get("values") };
  /** @type {Map<string, {input?: HTMLInputElement | HTMLSelectElement, error: HTMLElement, row: HTMLElement, hint: HTMLElement, help?: HTMLElement}>} */
  const fields = new Map();
  let timer = /** @type {any} */ (null);
  /** @type {HTMLInputElement[]} */
  const radios = [];
  let refreshEnvList = () => {};
  let agentHelp = () => {};
  let refreshWorkers = () => {};
  /** listeners added while building fields, removed with the view */
  const disposers = /** @type {(() => void)[]} */ ([]);

  function commit() {
    timer = null;
    model.set("values", { ...values });
    model.save_changes();
  }
  /** @param {string} name @param {any} value @param {boolean} [now] */
  function change(name, value, now = false) {
    values = { ...values, [name]: value };
    if (timer) clearTimeout(timer);
    if (now) commit();
    else timer = setTimeout(commit, DEBOUNCE_MS);
  }

  for (const section of model.get("sections")) {
    const fieldset = h("fieldset", "nbt-section");
    fieldset.append(h("legend", "", section.title));
    for (const spec of section.fields) {
      const row = h("div", "nbt-field");
      row.dataset.field = spec.name;
      if (spec.group) row.dataset.group = spec.group;
      const label = /** @type {HTMLLabelElement} */ (h("label", "", spec.label));
      const id = `nbt-${spec.name}-${Math.random().toString(36).slice(2, 8)}`;
      label.htmlFor = id;
      const error = h("div", "nbt-field-error");
      error.setAttribute("aria-live", "polite");
      /** @type {HTMLInputElement | HTMLSelectElement | undefined} */
      let input;
      if (spec.kind === "env") {
        input = envField(row, id);
      } else if (spec.kind === "workers") {
        workersField(row);
      } else if (spec.kind === "select") {
        const select = document.createElement("select");
        const choices = spec.name === "agent" ? model.get("agents") : spec.choices;
        for (const c of choices) {
          const option = document.createElement("option");
          option.value = c;
          option.textContent = spec.labels?.[c] ?? c;
          select.append(option);
        }
        select.value = values[spec.name];
        select.addEventListener("change", () => change(spec.name, select.value, true));
        input = select;
        row.append(label, select);
      } else {
        const text = document.createElement("input");
        text.type = "text";
        text.inputMode = spec.kind === "int" ? "numeric" : spec.kind === "float" ? "decimal" : "text";
        text.placeholder = spec.placeholder ?? "";
        text.value = values[spec.name] ?? "";
        text.addEventListener("input", () => change(spec.name, text.value));
        input = text;
        row.append(label, text);
      }
      if (input) input.id = id;
      const help = spec.help ? h("div", "nbt-help", spec.help) : undefined;
      if (help) row.append(help);
      const hint = h("div", "nbt-hint");
      row.append(hint);
      if (spec.name === "agent") {
        const about = h("div", "nbt-agent-help");
        row.append(about);
        agentHelp = () => { about.textContent = (model.get("agent_help") ?? {})[values.agent] ?? "your own agent: its class or factory is called in each worker"; };
      }
      row.append(error);
      fieldset.append(row);
      fields.set(spec.name, { input, error, row, hint, help });
    }
    root.append(fieldset);
  }

  const actions = h("div", "nbt-actions");
  const launch = /** @type {HTMLButtonElement} */ (h("button", "nbt-launch", "Launch"));
  launch.type = "button";
  const launchOut = h("span", "nbt-launch-out");
  const ask = h("div", "nbt-ask");
  ask.hidden = true;
  actions.append(launch, launchOut);
  root.append(actions, ask);
  // After a launch the form folds into one line (with Edit) so the dashboard is in view.
  const folded = h("div", "nbt-folded");
  folded.hidden = true;
  const foldedText = h("span", "nbt-folded-text");
  const edit = /** @type {HTMLButtonElement} */ (h("button", "nbt-edit", "Edit"));
  edit.type = "button";
  const foldedLaunch = /** @type {HTMLButtonElement} */ (h("button", "nbt-launch-again", "Launch again"));
  foldedLaunch.type = "button";
  const foldedOut = h("span", "nbt-launch-out");
  folded.append(foldedText, edit, foldedLaunch, foldedOut);
  root.prepend(folded);
  edit.addEventListener("click", () => fold(false));
  foldedLaunch.addEventListener("click", () => { fold(false); launch.click(); });

  /** @param {boolean} on */
  function fold(on) {
    root.classList.toggle("nbt-is-folded", on);
    folded.hidden = !on;
    foldedText.textContent = summaryLine(values);
  }

  function showStatus() {
    const text = model.get("run_status") ?? "";
    if (!text) return;
    for (const out of [launchOut, foldedOut]) {
      if (launch.dataset.busy === "1") continue;
      out.textContent = text;
      out.classList.toggle("nbt-failed", /\bfailed\b/.test(text));
    }
  }

  /** @param {"keep" | "stop"} previous */
  function doLaunch(previous) {
    ask.hidden = true;
    if (timer) commit();
    launch.disabled = true;
    launch.dataset.busy = "1";
    launchOut.textContent = previous === "stop" ? "stopping the running run, then launching…" : "launching…";
    client.request("launch", { previous }, { timeoutMs: LONG_REQUEST_MS }).then(
      ({ result }) => {
        launch.dataset.busy = "";
        launchOut.textContent = foldedOut.textContent = `launched run ${result.run_id} (${result.worker_ids.join(", ")})`;
        showStatus();
        fold(true);
        revealDashboard(el, result.run_id);
      },
      (err) => {
        launch.dataset.busy = "";
        fold(false);
        launchOut.textContent = foldedOut.textContent = `launch failed: ${err.message}`;
      },
    ).finally(() => { launch.dataset.busy = ""; updateValid(); });
  }

  launch.addEventListener("click", () => {
    const running = model.get("running_runs") ?? [];
    if (running.length === 0) { doLaunch("keep"); return; }
    // a run launched from here still goes: ask, never replace it silently
    const which = running.map((/** @type {any} */ r) => r.label).join(", ");
    const stopIt = /** @type {HTMLButtonElement} */ (h("button", "nbt-ask-stop", running.length > 1 ? "Stop them, then launch" : "Stop it, then launch"));
    const both = /** @type {HTMLButtonElement} */ (h("button", "nbt-ask-both", "Run both"));
    const cancel = /** @type {HTMLButtonElement} */ (h("button", "nbt-ask-cancel", "Cancel"));
    for (const b of [stopIt, both, cancel]) b.type = "button";
    stopIt.addEventListener("click", () => doLaunch("stop"));
    both.addEventListener("click", () => doLaunch("keep"));
    cancel.addEventListener("click", () => { ask.hidden = true; });
    ask.replaceChildren(h("span", "", `Still running: ${which}. `), stopIt, both, cancel);
    ask.hidden = false;
    stopIt.focus();
  });
  model.on("change:run_status", showStatus);

  /**
   * A new environment: its kwargs and a name derived from the old one no longer apply.
   * @param {string} envId @param {boolean} now
   */
  function setEnv(envId, now) {
    const old = values.env_id ?? "";
    if (envId === old) return;
    const changes = /** @type {Record<string, any>} */ ({ env_id: envId });
    if (values.env_kwargs) changes.env_kwargs = "";
    if (values.name && values.name === `${old}-${values.agent}`) changes.name = "";
    for (const [k, v] of Object.entries(changes)) {
      const input = fields.get(k)?.input;
      if (k !== "env_id" && input) input.value = v;
    }
    values = { ...values, ...changes };
    if (timer) clearTimeout(timer);
    if (now) commit();
    else timer = setTimeout(commit, DEBOUNCE_MS);
  }

  /** @param {HTMLElement} row @param {string} id */
  function envField(row, id) {
    const search = document.createElement("input");
    search.type = "search";
    search.placeholder = "search environments, or type an id (pkg.mod:Env-v0)";
    search.value = values.env_id ?? "";
    const list = h("div", "nbt-env-list");
    list.setAttribute("role", "listbox");
    const label = /** @type {HTMLLabelElement} */ (h("label", "", "Environment"));
    label.htmlFor = id;
    row.append(label, search, list);
    let picked = true; // the box shows the chosen id (not a search): list everything
    const fill = () => {
      const chosen = values.env_id ?? "";
      const filter = picked ? "" : search.value;
      const ids = matchingEnvs(model.get("envs"), values.agent, filter, { spaces: model.get("agent_spaces") ?? {}, kwargs: values.agent_kwargs ?? "" });
      list.replaceChildren(...ids.slice(0, MAX_ENV_MATCHES).map((envId) => {
        const option = /** @type {HTMLButtonElement} */ (h("button", "nbt-env-option", envId));
        option.type = "button";
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", String(envId === chosen));
        option.addEventListener("click", () => {
          search.value = envId;
          picked = true;
          setEnv(envId, true);
          fill();
        });
        return option;
      }));
      if (ids.length === 0) list.append(h("div", "nbt-muted", "no registered environment matches; the typed id is used as is"));
      else if (ids.length > MAX_ENV_MATCHES) list.append(h("div", "nbt-muted", `${ids.length - MAX_ENV_MATCHES} more: type to narrow the list`));
    };
    search.addEventListener("input", () => { picked = false; setEnv(search.value, false); fill(); });
    fill();
    refreshEnvList = fill;
    return search;
  }

  /** @param {HTMLElement} row */
  function workersField(row) {
    const mode = h("div", "nbt-workers-mode");
    const count = document.createElement("input");
    count.type = "text";
    count.inputMode = "numeric";
    count.className = "nbt-workers-count";
    count.setAttribute("aria-label", "number of workers");
    count.value = values.workers_count ?? "1";
    const list = h("div", "nbt-workers-list");
    const add = /** @type {HTMLButtonElement} */ (h("button", "nbt-add-worker", "Add worker"));
    add.type = "button";
    for (const [value, text] of [["count", "Number of workers"], ["list", "Worker ids"]]) {
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = `nbt-wm-${Math.random().toString(36).slice(2, 8)}`;
      radio.value = value;
      radio.checked = values.workers_mode === value;
      radio.addEventListener("change", () => { change("workers_mode", value, true); layout(); });
      const label = h("label", "nbt-radio");
      label.append(radio, document.createTextNode(` ${text}`));
      mode.append(label);
      radios.push(radio);
    }
    count.addEventListener("input", () => change("workers_count", count.value));
    add.addEventListener("click", () => { change("workers_list", [...values.workers_list, ""], true); rows(); });
    const preview = h("div", "nbt-workers-preview");
    row.append(h("label", "", "Workers"), mode, count, list, add, preview);
    const layout = () => {
      const isList = values.workers_mode === "list";
      count.hidden = isList;
      list.hidden = !isList;
      add.hidden = !isList;
      preview.hidden = isList;
    };
    const rows = () => {
      const current = /** @type {string[]} */ (values.workers_list);
      list.replaceChildren(...current.map((text, i) => {
        const line = h("div", "nbt-worker-row");
        const input = document.createElement("input");
        input.type = "text";
        input.placeholder = "auto";
        input.value = text;
        input.setAttribute("aria-label", `worker ${i + 1} id`);
        input.addEventListener("input", () => {
          const next = [...values.workers_list];
          next[i] = input.value;
          change("workers_list", next);
        });
        const remove = /** @type {HTMLButtonElement} */ (h("button", "nbt-remove-worker", "×"));
        remove.type = "button";
        remove.title = "remove this worker";
        remove.setAttribute("aria-label", `remove worker ${i + 1}`);
        remove.disabled = current.length === 1;
        remove.addEventListener("click", () => {
          change("workers_list", values.workers_list.filter((/** @type {string} */ _, /** @type {number} */ k) => k !== i), true);
          rows();
        });
        line.append(input, h("span", "nbt-worker-id"), h("span", "nbt-worker-error"), remove);
        return line;
      }));
      showPreview();
    };
    const showPreview = () => {
      const items = model.get("workers_preview") ?? [];
      if (values.workers_mode === "list") {
        [...list.children].forEach((line, i) => {
          const p = items[i];
          const idBox = /** @type {HTMLElement} */ (line.querySelector(".nbt-worker-id"));
          const errBox = /** @type {HTMLElement} */ (line.querySelector(".nbt-worker-error"));
          idBox.textContent = p?.id ? `→ ${p.id}${p.auto ? " (auto)" : ""}${p.overrides ? ` · own: ${p.overrides}` : ""}` : "";
          errBox.textContent = p?.error ?? "";
          line.classList.toggle("nbt-invalid", Boolean(p?.error));
        });
      } else {
        const ids = items.map((/** @type {any} */ p) => p.id);
        preview.textContent = ids.length ? `ids: ${ids.slice(0, 8).join(", ")}${ids.length > 8 ? ", …" : ""}` : "";
      }
    };
    rows();
    layout();
    refreshWorkers = () => {
      count.value = values.workers_count ?? "1";
      radios.forEach((r) => { r.checked = r.value === values.workers_mode; });
      if (list.children.length !== values.workers_list.length || document.activeElement?.closest(".nbt-workers-list") !== list) rows();
      layout();
    };
    model.on("change:workers_preview", showPreview);
    disposers.push(() => model.off("change:workers_preview", showPreview));
  }

  function updateGroups() { showAgentFields(fields, (model.get("agent_hyper") ?? {})[values.agent]); }
  function updateHints() {
    const hints = model.get("hints") ?? {};
    for (const [name, f] of fields) f.hint.textContent = hints[name] ? `blank: ${hints[name]}` : "";
  }
  function updateErrors() {
    const errors = model.get("errors") ?? {};
    for (const [name, f] of fields) {
      f.error.textContent = errors[name] ?? "";
      f.row.classList.toggle("nbt-invalid", Boolean(errors[name]));
      f.input?.setAttribute("aria-invalid", String(Boolean(errors[name])));
    }
    general.replaceChildren(...(model.get("general_errors") ?? []).map((/** @type {string} */ m) => h("li", "", m)));
  }
  function updateValid() {
    launch.disabled = !model.get("valid") || launch.dataset.busy === "1";
    launch.title = model.get("valid") ? "start the run" : "fix the fields marked in red first";
  }
  function updateValues() {
    // Python changed the values (set_values, from_config): show them, but never under the cursor.
    const incoming = model.get("values");
    if (timer) return; // our own edit is on its way; Python will echo it
    values = { ...incoming };
    for (const [name, f] of fields) {
      if (f.input && document.activeElement !== f.input && name in values) f.input.value = values[name] ?? "";
    }
    refreshEnvList();
    refreshWorkers();
    updateGroups();
    agentHelp();
  }
  const onAgent = () => { updateGroups(); refreshEnvList(); agentHelp(); };
  fields.get("agent")?.input?.addEventListener("change", () => onAgent());

  updateGroups();
  updateErrors();
  updateValid();
  updateHints();
  agentHelp();
  model.on("change:hints", updateHints);
  model.on("change:errors", updateErrors);
  model.on("change:general_errors", updateErrors);
  model.on("change:valid", updateValid);
  model.on("change:values", updateValues);
  return () => {
    if (timer) commit();
    client.dispose();
    cleanupError();
    releaseKeys();
    model.off("change:hints", updateHints);
    model.off("change:errors", updateErrors);
    model.off("change:general_errors", updateErrors);
    model.off("change:valid", updateValid);
    model.off("change:values", updateValues);
    model.off("change:run_status", showStatus);
    for (const dispose of disposers) dispose();
  };
}

export default { render };
