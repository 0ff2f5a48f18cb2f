"""The exception tree. Everything nbtrain raises on purpose derives from :class:`NbtrainError`.

::

    NbtrainError
    ├── InvalidWorkerIdError (also ValueError)   a worker id that breaks the id rule
    ├── ConfigError (also ValueError)            a config file that cannot be read or written
    ├── WireError (also ValueError)              telemetry bytes that are not a valid frame
    │   ├── BadMagicError, UnsupportedVersionError, FrameTooLargeError,
    │   └── TruncatedFrameError, MalformedPayloadError
    ├── StoreError                               the SQLite store refused an operation
    │   └── SchemaVersionError                   the file is from a newer nbtrain
    ├── RunError                                 a run or worker operation that cannot be done
    │   └── UnknownRunError, UnknownWorkerError (also LookupError)
    └── WorkerFailedError                        raised by ``Run.wait(raise_on_failure=True)``

Config validation errors are pydantic ``ValidationError``s (a ``ValueError``) so that they
point at the offending field.
"""

from __future__ import annotations


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


class RunError(NbtrainError):
    """A run or worker operation that cannot be done in the current state."""


class UnknownRunError(RunError, LookupError):
    """No run with that id in the database."""


class UnknownWorkerError(RunError, LookupError):
    """No worker with that id in the run."""


class WorkerFailedError(RunError):
    """One or more workers of a run failed."""
