"""The form's "Workers run on" choice (issue 11): offered only when Ray is importable, and
the chosen backend is what Launch passes to ``nbtrain.launch``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nbtrain.dispatch.start
from nbtrain.widgets import TrainForm
from nbtrain.widgets.form import ray_available


def _field_names(form: TrainForm) -> list[str]:
    return [f["name"] for s in form.core.sections for f in s["fields"]]


def test_the_choice_is_offered_when_ray_is_importable() -> None:
    pytest.importorskip("ray")
    form = TrainForm(env_id="FrozenLake-v1", episodes=5)
    assert ray_available()
    assert "backend" in _field_names(form)
    spec = next(f for s in form.core.sections for f in s["fields"] if f["name"] == "backend")
    assert spec["choices"] == ["local", "ray"]
    assert spec["labels"] == {"local": "this machine (subprocesses)", "ray": "Ray"}
    assert form.values["backend"] == "local"
    form.close()


def test_finding_ray_does_not_import_it() -> None:
    code = (
        "import sys; from nbtrain.widgets.form import ray_available; "
        "print(ray_available(), 'ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(ray_available()), "False"]


def test_without_ray_the_choice_is_absent_and_ray_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # how Python marks a module as unimportable
    assert not ray_available()
    form = TrainForm(env_id="FrozenLake-v1", episodes=5)
    assert "backend" not in _field_names(form)
    assert form.valid
    form.set_values(backend="ray")
    assert not form.valid
    # the backend field is not drawn here: the reason shows with the general errors
    # (regression: it was keyed to that field, and Launch was disabled with nothing red)
    assert "backend" not in form.errors
    assert form.core.general_errors == [
        "backend 'ray': Ray is not installed here: pip install 'nbtrain[ray]'"
    ]
    form.close()


def test_an_unknown_backend_is_an_error_on_its_field() -> None:
    form = TrainForm(env_id="FrozenLake-v1", episodes=5, backend="dask")
    assert not form.valid
    assert form.errors["backend"] == "unknown backend 'dask'; choose one of ['local', 'ray']"
    with pytest.raises(ValueError, match="unknown backend 'dask'"):
        form.config  # noqa: B018
    form.close()


@pytest.mark.slow
def test_launch_runs_on_the_local_backend_by_default(tmp_path: Path) -> None:
    form = TrainForm(db=tmp_path / "x.sqlite", env_id="FrozenLake-v1", episodes=3, workers=2)
    assert form.backend == "local"
    run = form.launch()
    assert run.wait(timeout=60) == {"000001": "completed", "000002": "completed"}
    assert run._session is not None
    assert run._session.backend.name == "local"
    form.close()


@pytest.mark.slow
def test_the_chosen_backend_reaches_nbtrain_launch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray itself is not started in a unit test: only its resolution is swapped for the
    local backend, after recording what the form asked for."""
    pytest.importorskip("ray")
    asked: list[Any] = []
    real = nbtrain.dispatch.start.resolve_backend

    def resolve(backend: Any) -> Any:
        asked.append(backend)
        return real("local" if backend == "ray" else backend)

    monkeypatch.setattr(nbtrain.dispatch.start, "resolve_backend", resolve)
    form = TrainForm(db=tmp_path / "x.sqlite", env_id="FrozenLake-v1", episodes=3)
    form.set_values(backend="ray")
    assert form.valid, form.errors
    run = form.launch()
    assert asked == ["ray"]
    assert run.wait(timeout=60) == {"000001": "completed"}
    form.close()
