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


class NbtrainError(Exception):
    """Base class of every error nbtrain raises on purpose."""


class InvalidWorkerIdError(NbtrainError, ValueError):
    """A worker id that does not follow the rule; the message names the value and the rule."""

    def __init__(self, value: object, rule: str) -> None:
        self.value = value
        self.rule = rule
        super().__init__(f"invalid worker id {value!r}: {rule}")


class ConfigError(NbtrainError, ValueError):
    """A config file that cannot be loaded or a config that cannot be saved as text."""


class WireError(NbtrainError, ValueError):
    """Bytes on a telemetry or control pipe that are not a valid frame."""


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
    """The telemetry store refused an operation."""


class SchemaVersionError(StoreError):
    """The database was written by a newer nbtrain than this one."""


class CorruptStoreError(StoreError):
    """The file is not an SQLite database, or it is damaged or truncated."""


class StoreAccessError(StoreError):
    """The database cannot be opened at all: a folder, a missing folder, no permission."""


class ReadOnlyStoreError(StoreError):
    """The database can be read but not written (read-only file, folder or mount)."""


class StoreWriteError(StoreError):
    """Writing failed during a run (disk full, I/O error, the file removed); the writer has
    stopped so that nothing inconsistent is committed after the failure."""


class RunError(NbtrainError):
    """A run or worker operation that cannot be done in the current state."""


class UnknownRunError(RunError, LookupError):
    """No run with that id in the database (or not a run id at all).

    ``run_id`` and ``path`` say what was looked for where, when the raiser knows."""

    def __init__(self, message: str, *, run_id: object = None, path: object = None) -> None:
        self.run_id = run_id
        self.path = path
        super().__init__(message)


class UnknownWorkerError(RunError, LookupError):
    """No worker with that id in the run; ``known`` lists the workers there are."""

    def __init__(self, run_id: str | None, worker_id: str, known: Iterable[str] = ()) -> None:
        self.run_id = run_id
        self.worker_id = worker_id
        self.known = sorted(known)
        where = f"run {run_id}" if run_id else "the database"
        super().__init__(
            f"no worker {worker_id!r} in {where}; its workers are {', '.join(self.known) or 'none'}"
        )


class WorkerFailedError(RunError):
    """Workers of a run failed: raised by :meth:`Run.raise_for_failures` and by
    ``Run.wait(raise_on_failure=True)``.

    ``failures`` maps each failed worker id to its error line; ``tracebacks`` to its
    traceback (or captured stderr) where there is one."""

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
