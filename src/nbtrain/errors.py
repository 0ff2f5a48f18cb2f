"""The exception tree. Everything nbtrain raises on purpose derives from :class:`NbtrainError`.

::

    NbtrainError
    ├── InvalidWorkerIdError (also ValueError)   a worker id that breaks the id rule
    ├── ConfigError (also ValueError)            a config file that cannot be read or written
    ├── WireError (also ValueError)              telemetry bytes that are not a valid frame
    │   ├── BadMagicError, UnsupportedVersionError, FrameTooLargeError,
    │   └── TruncatedFrameError, MalformedPayloadError
    ├── StoreError                               the SQLite store refused an operation
    │   ├── SchemaVersionError                   the file is from a newer nbtrain
    │   ├── CorruptStoreError                    not an SQLite file, damaged or truncated
    │   ├── StoreAccessError                     cannot be opened: a folder, no folder, no access
    │   ├── ReadOnlyStoreError                   readable but cannot be written (or upgraded)
    │   └── StoreWriteError                      a write failed during a run; the writer stopped
    └── RunError                                 a run or worker operation that cannot be done
        ├── UnknownRunError, UnknownWorkerError (also LookupError), with the ids as attributes
        └── WorkerFailedError                    workers failed: ``Run.raise_for_failures()``

Config validation errors are pydantic ``ValidationError``s (a ``ValueError``) so that they
point at the offending field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class NbtrainError(Exception):
    """Base class of every error nbtrain raises on purpose.

    Examples
    --------
    >>> try:
    ...     nbtrain.Run.open("01J0000000000000000000000Z", db="missing.sqlite")
    ... except nbtrain.NbtrainError as error:
    ...     print(type(error).__name__)  # doctest: +SKIP
    UnknownRunError
    """

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle and copy from args and attributes, not by calling ``__init__`` again.

        An exception pickles as ``type(self)(*self.args)``, which the errors below with
        their own parameters cannot take; this way they cross process boundaries (a
        ``ProcessPoolExecutor``, multiprocessing) with their context.
        """
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[NbtrainError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InvalidWorkerIdError(NbtrainError, ValueError):
    """A worker id that does not follow the rule; the message names the value and the rule.

    Raised by :func:`nbtrain.normalize_worker_id` and everything that takes a worker id.

    Attributes
    ----------
    value : object
        The value given as a worker id.
    rule : str
        The rule it breaks, in words.

    Examples
    --------
    >>> nbtrain.normalize_worker_id("Bad Id")  # doctest: +SKIP
    Traceback (most recent call last):
    InvalidWorkerIdError: invalid worker id 'Bad Id': ...
    """

    def __init__(self, value: object, rule: str) -> None:
        self.value = value
        self.rule = rule
        super().__init__(f"invalid worker id {value!r}: {rule}")


class ConfigError(NbtrainError, ValueError):
    """A config file that cannot be loaded or a config that cannot be saved as text.

    Raised by :meth:`TrainConfig.load <nbtrain.TrainConfig.load>`,
    :meth:`TrainConfig.save <nbtrain.TrainConfig.save>` and ``Run.config()``. Invalid field
    values are pydantic ``ValidationError`` errors instead (they name the field).
    """


class WireError(NbtrainError, ValueError):
    """Bytes on a telemetry or control pipe that are not a valid frame.

    The kernel reads worker pipes with it: an invalid frame is skipped, counted and logged
    (the first three, then every thousandth), and reading goes on at the next valid frame,
    so what the worker sent around it is still stored. Subclasses say what was wrong
    (``BadMagicError``, ``UnsupportedVersionError``, ``FrameTooLargeError``,
    ``TruncatedFrameError``, ``MalformedPayloadError``; see ``docs/wire.md``).
    """


class BadMagicError(WireError):
    """The frame does not start with the nbtrain magic bytes."""


class UnsupportedVersionError(WireError):
    """The frame was written by an incompatible wire version."""


class FrameTooLargeError(WireError):
    """The frame announces a payload over the size limit."""


class TruncatedFrameError(WireError):
    """The stream ended in the middle of a frame."""


class MalformedPayloadError(WireError):
    """The frame's payload is not a valid event."""


class StoreError(NbtrainError):
    """The telemetry store refused an operation.

    Catch it to handle every store problem at once; the subclasses say which.

    Examples
    --------
    >>> try:
    ...     store = nbtrain.TelemetryStore("results/")
    ... except nbtrain.StoreError as error:
    ...     print(error)  # doctest: +SKIP
    """


class SchemaVersionError(StoreError):
    """The database was written by a newer nbtrain than this one.

    Raised when opening the file (:class:`nbtrain.TelemetryStore`, ``launch``, the CLI);
    upgrade nbtrain to read it.
    """


class CorruptStoreError(StoreError):
    """The file is not an SQLite database, or it is damaged or truncated.

    Raised when opening or reading the file; the message names it.
    """


class StoreAccessError(StoreError):
    """The database cannot be opened at all: a folder, a missing folder, no permission.

    Raised when opening the file; the message names the path and the reason.
    """


class ReadOnlyStoreError(StoreError):
    """The database can be read but not written (read-only file, folder or mount).

    Raised by ``launch`` and by store operations that write (delete, archive, vacuum, an
    upgrade of an older file); plain reads of an up-to-date file still work.
    """


class StoreWriteError(StoreError):
    """Writing failed during a run (disk full, I/O error, the file removed).

    The writer has stopped so that nothing inconsistent is committed after the failure; the
    run's workers are stopped and ``Run.wait()`` raises a :class:`StoreError` from it.
    """


class RunError(NbtrainError):
    """A run or worker operation that cannot be done in the current state.

    For example ``Run.restart`` of a worker that still runs, ``Run.evaluate`` without a
    saved policy, deleting a run whose workers are live, or a worker that cannot start.
    """


class UnknownRunError(RunError, LookupError):
    """No run with that id in the database (or not a run id at all).

    Parameters
    ----------
    message : str
        What was looked for, and the nearest ids when there are some.
    run_id : object, optional
        The id looked for, when the raiser knows it.
    path : object, optional
        The database looked in, when the raiser knows it.

    Examples
    --------
    >>> try:
    ...     store.run("01J0000000000000000000000Z")
    ... except nbtrain.UnknownRunError as error:
    ...     print(error.run_id)  # doctest: +SKIP
    """

    def __init__(self, message: str, *, run_id: object = None, path: object = None) -> None:
        self.run_id = run_id
        self.path = path
        super().__init__(message)


class UnknownWorkerError(RunError, LookupError):
    """No worker with that id in the run.

    Parameters
    ----------
    run_id : str or None
        The run looked in (None: the whole database).
    worker_id : str
        The worker id looked for.
    known : iterable of str
        The run's worker ids; kept sorted as ``known``.

    Examples
    --------
    >>> try:
    ...     run.stop("000009")
    ... except nbtrain.UnknownWorkerError as error:
    ...     print(error.known)  # doctest: +SKIP
    ['000001', '000002']
    """

    def __init__(self, run_id: str | None, worker_id: str, known: Iterable[str] = ()) -> None:
        self.run_id = run_id
        self.worker_id = worker_id
        self.known = sorted(known)
        where = f"run {run_id}" if run_id else "the database"
        super().__init__(
            f"no worker {worker_id!r} in {where}; its workers are {', '.join(self.known) or 'none'}"
        )


class WorkerFailedError(RunError):
    """Workers of a run failed.

    Raised by :meth:`Run.raise_for_failures <nbtrain.Run.raise_for_failures>` and by
    ``Run.wait(raise_on_failure=True)``.

    Parameters
    ----------
    run_id : str
        The run.
    failures : mapping of str to str or None
        Each failed worker id and its error line (kept as ``failures``).
    tracebacks : mapping of str to str or None, optional
        Each failed worker's traceback or captured stderr, where there is one (kept as
        ``tracebacks``).

    Examples
    --------
    >>> try:
    ...     run.wait(raise_on_failure=True)
    ... except nbtrain.WorkerFailedError as error:
    ...     print(error.tracebacks["000001"])  # doctest: +SKIP
    """

    def __init__(
        self,
        run_id: str,
        failures: Mapping[str, str | None],
        tracebacks: Mapping[str, str | None] | None = None,
    ) -> None:
        self.run_id = run_id
        self.failures = dict(failures)
        self.tracebacks = dict(tracebacks or {})
        lines = "; ".join(f"{w}: {e or 'failed'}" for w, e in self.failures.items())
        n = len(self.failures)
        super().__init__(f"run {run_id}: {n} worker{'s' if n != 1 else ''} failed ({lines})")
