"""``TrainForm``: every ``TrainConfig`` field in a form; Launch starts the run and shows its
dashboard under the form.

The form is an ``ipywidgets.VBox`` holding the anywidget form core and, after a launch, the
run's :class:`RunDashboard`, so nothing is displayed from threads or through ``Output``.
Each edit is validated in Python by ``TrainConfig`` itself; errors come back per field.
"""

from __future__ import annotations

import importlib.util
import logging
import numbers
import os
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets
import traitlets

from nbtrain.config.agentref import TABULAR_AGENTS
from nbtrain.log_codes import LOG_UI_TRAIN_FORM_ERROR, LOG_UI_TRAIN_FORM_INFO
from nbtrain.logs import log
from nbtrain.widgets._common import RequestWidget, bundle_trait, reject_unknown_kwargs
from nbtrain.widgets.envinfo import AGENT_SPACES, env_catalogue, env_mismatch
from nbtrain.widgets.fallback import StaticTwin, publish
from nbtrain.widgets.form_fields import (
    CONFIG_KEYS,
    count_preview,
    field_errors,
    to_kwargs,
    values_from_config,
    worker_preview,
)
from nbtrain.widgets.form_help import AGENT_HELP, sections_with_help
from nbtrain.widgets.form_spec import (
    AGENTS,
    BACKEND_FIELD,
    BACKENDS,
    SECTIONS,
    hyper_by_agent,
)
from nbtrain.widgets.outcome import FINAL, outcome_text

if TYPE_CHECKING:
    from nbtrain.config import TrainConfig
    from nbtrain.run import Run


def ray_available() -> bool:
    """Whether Ray can be imported here, found without importing it (that takes seconds)."""
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # a broken or half-removed installation
        return False


def with_backend_field(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``sections`` with the "Workers run on" choice in the Run section."""
    out = [dict(s) for s in sections]
    for section in out:
        if section["title"] == "Run":
            section["fields"] = [*section["fields"], dict(BACKEND_FIELD)]
    return out


class FormCore(RequestWidget):
    """The anywidget part of :class:`TrainForm`: fields, per-field errors, Launch."""

    _esm = bundle_trait("form.js")
    _css = bundle_trait("form.css")
    _log_code = LOG_UI_TRAIN_FORM_ERROR

    sections: traitlets.List[Any] = traitlets.List().tag(sync=True)
    agents = traitlets.List(traitlets.Unicode()).tag(sync=True)
    envs: traitlets.List[Any] = traitlets.List().tag(
        sync=True
    )  # [{id, obs, action}], filtered by agent in the view
    values = traitlets.Dict().tag(sync=True)
    errors = traitlets.Dict().tag(sync=True)
    general_errors = traitlets.List(traitlets.Unicode()).tag(sync=True)
    workers_preview: traitlets.List[Any] = traitlets.List().tag(sync=True)
    valid = traitlets.Bool(False).tag(sync=True)
    launched_run_id = traitlets.Unicode("").tag(sync=True)
    # the line next to Launch: "running …", then "completed in 2.1 s" or "3 failed: …"
    run_status = traitlets.Unicode("").tag(sync=True)
    # runs launched from this form that still go: [{run_id, label}] (Launch asks about them)
    running_runs: traitlets.List[Any] = traitlets.List().tag(sync=True)
    # what a blank field stands for once the config resolves it, e.g. the step limit
    hints = traitlets.Dict().tag(sync=True)
    agent_help = traitlets.Dict().tag(sync=True)
    # agents that need discrete observations and actions (the envs offered follow)
    tabular_agents = traitlets.List(traitlets.Unicode()).tag(sync=True)
    # per built-in agent: the spaces it handles (envinfo.AGENT_SPACES) and its
    # hyperparameter fields' placeholder and help (from its signature and PARAM_HELP)
    agent_spaces = traitlets.Dict().tag(sync=True)
    agent_hyper = traitlets.Dict().tag(sync=True)


class TrainForm(ipywidgets.VBox):  # type: ignore[misc]
    """A form for a run: ``TrainForm(db=..., env_id="FrozenLake-v1", episodes=200, ...)``.

    Keyword arguments prefill fields: any ``TrainConfig`` field, or the tabular
    hyperparameters (``alpha``, ``gamma``, ``epsilon``, ``epsilon_min``, ``epsilon_decay``).
    """

    def __init__(
        self,
        db: str | os.PathLike[str] = "nbtrain.sqlite",
        *,
        backend: str = "local",
        **field_defaults: Any,
    ):
        reject_unknown_kwargs("TrainForm", field_defaults, CONFIG_KEYS | {"db", "backend"})
        values, extras = values_from_config(_plain_workers(field_defaults))
        values["backend"] = backend
        self.ray_available = ray_available()
        sections = sections_with_help(SECTIONS)
        if self.ray_available:
            sections = with_backend_field(sections)
        self._extras = extras
        agents = list(AGENTS) + sorted(extras["agent_objects"])
        if values["agent"] not in agents:
            agents.append(values["agent"])
        core = FormCore(
            sections=sections,
            agent_help=AGENT_HELP,
            tabular_agents=list(TABULAR_AGENTS),
            agent_spaces=AGENT_SPACES,
            agent_hyper=hyper_by_agent(),
            agents=agents,
            envs=list(env_catalogue()),
            values=values,
        )
        super().__init__(children=(core,))
        self.add_class("nbtrain-train-form")
        self.db = db
        self.core = core
        self.run: Run | None = None
        self._runs: dict[str, Run] = {}  # launched here and maybe still going
        self._closed = threading.Event()
        self._twin = StaticTwin()
        self._config: TrainConfig | None = None
        self._error: Exception | None = None
        core.observe(self._on_values, names="values")
        core._handlers["launch"] = self._on_launch_request
        self._validate()

    @classmethod
    def from_config(
        cls, config: TrainConfig, db: str | os.PathLike[str] = "nbtrain.sqlite"
    ) -> TrainForm:
        """A form prefilled with ``config``'s fields (edit, then Launch). A name that is
        just the derived ``{env_id}-{agent}`` is left blank, so it follows a new env."""
        fields = {key: getattr(config, key) for key in CONFIG_KEYS if hasattr(config, key)}
        fields = {
            k: v
            for k, v in fields.items()
            if k not in {"alpha", "gamma", "epsilon", "epsilon_min", "epsilon_decay"}
        }
        derived = type(config)(**{k: v for k, v in fields.items() if k != "name"}).name
        if fields.get("name") == derived:
            del fields["name"]
        return cls(db=db, **fields)

    # -- validation ------------------------------------------------------------------------
    def _on_values(self, _change: Any) -> None:
        try:
            self._validate()
        except Exception as err:  # never lose an error in the kernel log
            # nor launch the config of values the form no longer shows
            self._config, self._error = None, err
            with self.core.hold_sync():
                self.core.valid = False
                self.core.general_errors = [f"{type(err).__name__}: {err}"]
            self.core.report_error("validate", err)

    def _validate(self) -> None:
        from nbtrain.config import TrainConfig

        values = dict(self.core.values)
        parsed = to_kwargs(values, self._extras)
        errors = dict(parsed.errors)
        general: list[str] = []
        config: TrainConfig | None = None
        error: Exception | None = None
        try:
            config = TrainConfig(**parsed.kwargs)
        except Exception as err:
            error = err
            more, general = field_errors(err, values)
            for name, message in more.items():
                errors.setdefault(name, message)
        mismatch = env_mismatch(
            str(values.get("agent", "")),
            str(values.get("env_id", "")).strip(),
            parsed.kwargs.get("agent_kwargs"),
        )
        if mismatch and "env_id" not in errors:
            errors["env_id"] = mismatch
        backend = str(values.get("backend") or "local")
        if backend not in BACKENDS:
            errors["backend"] = f"unknown backend {backend!r}; choose one of {list(BACKENDS)}"
        elif backend == "ray" and not self.ray_available:
            # the backend field is drawn only where Ray is: say it where it shows
            general.append("backend 'ray': Ray is not installed here: pip install 'nbtrain[ray]'")
            error = error or ValueError(general[-1])
            config = None
        if errors and error is None:
            error = ValueError("; ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
            config = None
        if values.get("workers_mode") == "list":
            preview = worker_preview(
                list(values.get("workers_list") or [""]), self._extras.get("worker_specs", {})
            )
        else:
            preview = count_preview(values.get("workers_count"))
        self._config, self._error = config, error
        hints: dict[str, str] = {}
        if config is not None:
            limit = config.worker_configs()[0].max_steps_per_episode
            hints["max_steps_per_episode"] = f"{limit} steps, as the config resolves it"
        with self.core.hold_sync():
            self.core.hints = hints
            self.core.errors = errors
            self.core.general_errors = general
            self.core.workers_preview = preview
            self.core.valid = config is not None

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.core.values)

    def set_values(self, **changes: Any) -> None:
        """Change form values as a person typing would (strings, as the view sends them)."""
        unknown = set(changes) - set(self.core.values)
        reject_unknown_kwargs("set_values", unknown, self.core.values)
        self.core.values = {**self.core.values, **changes}

    @property
    def valid(self) -> bool:
        return bool(self.core.valid)

    @property
    def errors(self) -> dict[str, str]:
        return dict(self.core.errors)

    @property
    def backend(self) -> str:
        """Where Launch starts the workers: ``"local"`` (subprocesses) or ``"ray"``."""
        return str(self.core.values.get("backend") or "local")

    @property
    def config(self) -> TrainConfig:
        """The form as a ``TrainConfig``; raises the validation error when the form is invalid."""
        if self._config is None:
            assert self._error is not None
            raise self._error
        return self._config

    # -- launch ----------------------------------------------------------------------------
    def launch(self, previous: str = "keep") -> Run:
        """What the Launch button does: start the run, show its dashboard, return the Run.

        ``previous`` says what happens to runs launched from this form that still go:
        ``"keep"`` (default) runs both and keeps their dashboards, so each keeps its Stop;
        ``"stop"`` stops them first. The button asks the person which one they want.
        """
        from nbtrain.run import launch

        if previous not in ("keep", "stop"):
            raise ValueError(f"previous must be 'keep' or 'stop', got {previous!r}")
        config = self.config
        still = self._still_running()
        if previous == "stop":
            for run in still:
                run.stop()
            still = []
        run = launch(config, db=self.db, backend=self.backend)
        log(logging.INFO, LOG_UI_TRAIN_FORM_INFO, "the form launched run %r with workers %s",
            config.name, ", ".join(run.worker_ids), run_id=run.run_id)  # fmt: skip
        self.run = run
        self._runs[run.run_id] = run
        dashboard = run.dashboard()
        keep_ids = {r.run_id for r in still}
        children: tuple[Any, ...] = tuple(getattr(self, "children", ()))
        kept = [c for c in children[1:] if getattr(c, "run_id", None) in keep_ids]
        dropped = [c for c in children[1:] if c not in kept and hasattr(c, "close")]
        self.children = (self.core, dashboard, *kept)
        for child in dropped:
            child.close()
        self._twin.update(dashboard.static_html())
        self._runs = {rid: r for rid, r in self._runs.items() if rid in keep_ids | {run.run_id}}
        with self.core.hold_sync():
            self.core.launched_run_id = run.run_id
            ids = ", ".join(run.worker_ids)
            self.core.run_status = f"launched run {run.run_id} ({ids}) · running…"
            self.core.error = ""
            self._publish_running()
        threading.Thread(
            target=self._watch, args=(run,), name=f"nbtrain-form-{run.run_id}", daemon=True
        ).start()
        return run

    def _still_running(self) -> list[Run]:
        from nbtrain.live.hub import get_hub

        def going(run: Run) -> bool:
            live = get_hub().get(run.run_id)
            if live is None:
                return run.run_status == "running"
            with live.lock:  # the hub knows a worker ended before the session reaps it
                return any(live.workers[w].status not in FINAL for w in live.worker_ids)

        return [r for r in self._runs.values() if going(r)]

    def _publish_running(self) -> None:
        self.core.running_runs = [
            {"run_id": r.run_id, "label": _run_label(r)} for r in self._still_running()
        ]

    def _watch(self, run: Run) -> None:
        """Turn the line next to Launch into the run's outcome once its workers have ended."""
        from nbtrain.live.hub import get_hub

        live = get_hub().get(run.run_id)
        if live is None:
            return
        version = -1
        try:
            while not self._closed.is_set():
                version = live.wait_for_change(version, timeout=0.5)
                with live.lock:
                    rows = [_worker_row(live.workers[w]) for w in live.worker_ids]
                    # ended and reaped: the exit codes are known too
                    settled = all(live.workers[w].settled for w in live.worker_ids)
                outcome = outcome_text(rows)
                if outcome is not None and settled:
                    dashboard = self.dashboard
                    if dashboard is not None and getattr(dashboard, "run_id", "") == run.run_id:
                        self._twin.update(dashboard.static_html())
                    with self.core.hold_sync():
                        if self.core.launched_run_id == run.run_id:
                            ids = ", ".join(run.worker_ids)
                            self.core.run_status = f"launched run {run.run_id} ({ids}) · {outcome}"
                        self._publish_running()
                    return
        except Exception as err:  # never lose an error in a thread
            self.core.report_error("run status", err, run_id=run.run_id)

    def _on_launch_request(self, params: dict[str, Any], _buffers: list[bytes]) -> Any:
        run = self.launch(previous=str(params.get("previous") or "keep"))
        return {"run_id": run.run_id, "worker_ids": run.worker_ids}

    def _ipython_display_(self) -> None:
        """The form, then its static twin: a saved notebook opened without a kernel shows
        the last run's summary there instead of "model not found" (see fallback.py)."""
        publish(self._repr_mimebundle_())
        self._twin.show("<p>No run launched from this form yet.</p>")

    def close(self) -> None:
        closed = getattr(self, "_closed", None)
        if closed is not None:
            closed.set()
        super().close()

    @property
    def dashboard(self) -> Any:
        return self.children[1] if len(self.children) > 1 else None

    def __repr__(self) -> str:
        values = self.core.values
        return (
            f"TrainForm(env_id={values.get('env_id')!r}, agent={values.get('agent')!r}, "
            f"valid={self.valid})"
        )


def _run_label(run: Run) -> str:
    return f"{run.run_id} ({len(run.worker_ids)} workers)"


def _worker_row(worker: Any) -> dict[str, Any]:
    return {
        "status": worker.status,
        "error": worker.error,
        "started_at": worker.started_at,
        "ended_at": worker.ended_at,
    }


def _plain_workers(fields: dict[str, Any]) -> dict[str, Any]:
    workers = fields.get("workers")
    if isinstance(workers, numbers.Integral) and not isinstance(workers, bool):
        return {**fields, "workers": int(workers)}
    return fields
