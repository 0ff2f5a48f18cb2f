"""nbtrain's errors cross process boundaries and copy with their context.

Regression: ``InvalidWorkerIdError``, ``UnknownWorkerError`` and ``WorkerFailedError`` could
not be unpickled (their ``__init__`` takes other parameters than ``args``), so raising one in a
``ProcessPoolExecutor`` gave the parent ``BrokenProcessPool`` instead of the error, and
``UnknownRunError`` lost its ``run_id`` and ``path``.
"""

from __future__ import annotations

import copy
import inspect
import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest

import nbtrain
from nbtrain import errors

WITH_CONTEXT: dict[type[errors.NbtrainError], errors.NbtrainError] = {
    errors.InvalidWorkerIdError: errors.InvalidWorkerIdError("gpu-a", "use [a-z0-9_]"),
    errors.UnknownRunError: errors.UnknownRunError("no run 'x'", run_id="x", path="/d.sqlite"),
    errors.UnknownWorkerError: errors.UnknownWorkerError("01J", "000009", ["000002", "000001"]),
    errors.WorkerFailedError: errors.WorkerFailedError(
        "01J", {"000001": "ValueError: boom", "000002": None}, {"000001": "Traceback ..."}
    ),
}


def every_error() -> list[errors.NbtrainError]:
    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.NbtrainError)
    ]
    assert len(classes) > len(WITH_CONTEXT)
    return [WITH_CONTEXT.get(cls) or cls("what went wrong") for cls in classes]


@pytest.mark.parametrize("error", every_error(), ids=lambda e: type(e).__name__)
def test_errors_pickle_and_copy_with_their_context(error: errors.NbtrainError) -> None:
    for twin in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(twin) is type(error)
        assert str(twin) == str(error)
        assert twin.args == error.args
        assert vars(twin) == vars(error)


def bad_worker_id() -> str:
    return nbtrain.normalize_worker_id("gpu-a")


def test_an_error_raised_in_a_process_pool_reaches_the_parent() -> None:
    with ProcessPoolExecutor(max_workers=1) as pool:
        future = pool.submit(bad_worker_id)
        with pytest.raises(nbtrain.InvalidWorkerIdError, match="gpu-a") as caught:
            future.result(timeout=60)
    assert caught.value.value == "gpu-a"
    assert "lower-case letters, digits and '_'" in caught.value.rule
