"""Run, worker and episode identifiers.

Worker ids are what users type and what every stored row is keyed by, so they are
normalized once, here, and never contain ``-``: episode ids then split without ambiguity.
This module is imported by worker subprocesses, so it stays free of heavy imports.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable

from nbtrain.errors import InvalidWorkerIdError

__all__ = [
    "WORKER_ID_COLUMN",
    "WORKER_ID_PREFIX",
    "WORKER_ID_WIDTH",
    "InvalidWorkerIdError",
    "assign_worker_ids",
    "format_episode_id",
    "is_run_id",
    "new_run_id",
    "normalize_worker_id",
    "parse_episode_id",
]

WORKER_ID_PREFIX = "w"
WORKER_ID_WIDTH = 6
# The column that names the worker in every table and DataFrame.
WORKER_ID_COLUMN = "worker_id"

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_]{0,31}")
_NUMERIC_RE = re.compile(r"w?([0-9]+)")
# A ULID: 26 Crockford base32 characters, the first 0-7 (a 48-bit time stamp comes first).
_ULID = r"[0-7][0-9A-HJKMNP-TV-Z]{25}"
_RUN_ID_RE = re.compile(_ULID)
_EPISODE_RE = re.compile(
    f"(?P<run>{_ULID})" r"-w(?P<worker>[a-z0-9][a-z0-9_]{0,31})-ep(?P<ep>[0-9]{6,})"
)
_RULE = (
    "a worker id is an integer >= 0, 'w' followed by digits, or 1-32 characters of "
    "lower-case letters, digits and '_' starting with a letter or digit"
)


def new_run_id() -> str:
    """Make a fresh run id.

    Returns
    -------
    str
        A 26-character ULID; ids sort by creation time, so ``nbtrain runs`` lists oldest
        first.

    Examples
    --------
    >>> len(nbtrain.new_run_id())
    26
    """
    from ulid import ULID

    return str(ULID())


def is_run_id(text: object) -> bool:
    """Tell whether ``text`` is a run id (a 26-character ULID)."""
    return isinstance(text, str) and _RUN_ID_RE.fullmatch(text) is not None


def check_run_id(text: object) -> str:
    """Return ``text`` if it is a run id; else raise ``UnknownRunError`` saying so.

    Run ids name folders and files, so nothing else is ever accepted where one is expected.
    """
    if not is_run_id(text):
        from nbtrain.errors import UnknownRunError

        raise UnknownRunError(f"{text!r} is not a run id (a 26-character ULID such as "
                              f"{new_run_id()!r})", run_id=text)  # fmt: skip
    return str(text)


def _pad(number: int) -> str:
    text = f"{number:0{WORKER_ID_WIDTH}d}"
    if len(text) > 32:
        raise InvalidWorkerIdError(number, _RULE + " (at most 32 characters)")
    return text


def normalize_worker_id(value: object) -> str:
    """Return the canonical worker id for ``value``.

    ``7``, ``"7"``, ``"0007"``, ``"w7"`` and ``"W000007"`` all mean ``"000007"``;
    names such as ``"GPU_A"`` are lower-cased and kept.

    Parameters
    ----------
    value : int or str
        A worker number, ``"w"`` and digits, or a name of 1-32 characters (letters, digits,
        ``_``, starting with a letter or digit).

    Returns
    -------
    str
        The id as nbtrain stores it.

    Raises
    ------
    InvalidWorkerIdError
        ``value`` follows none of the forms (a bool, a negative number, other characters).

    Examples
    --------
    >>> nbtrain.normalize_worker_id("w7")
    '000007'
    >>> nbtrain.normalize_worker_id("GPU_A")
    'gpu_a'
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | str):
        raise InvalidWorkerIdError(value, _RULE)
    if isinstance(value, numbers.Integral):
        number = int(value)
        if number < 0:
            raise InvalidWorkerIdError(value, _RULE)
        return _pad(number)
    text = value.strip().lower()
    if len(text) > 32:
        raise InvalidWorkerIdError(value, _RULE + " (at most 32 characters)")
    numeric = _NUMERIC_RE.fullmatch(text)
    if numeric is not None:
        return _pad(int(numeric.group(1)))
    if _NAME_RE.fullmatch(text) is None:
        raise InvalidWorkerIdError(value, _RULE)
    return text


def assign_worker_ids(requested: Iterable[object | None]) -> list[str]:
    """Normalize explicit ids and fill each ``None`` with the next free ``000001``, ``000002``….

    Two entries that normalize to the same id are an error naming both spellings.
    """
    items = list(requested)
    explicit: dict[str, object] = {}
    for item in items:
        if item is None:
            continue
        worker_id = normalize_worker_id(item)
        if worker_id in explicit:
            raise InvalidWorkerIdError(
                item,
                f"worker ids must be unique in a run; {explicit[worker_id]!r} and {item!r} "
                f"both normalize to {worker_id!r}",
            )
        explicit[worker_id] = item
    result: list[str] = []
    counter = 0
    for item in items:
        if item is not None:
            result.append(normalize_worker_id(item))
            continue
        counter += 1
        while _pad(counter) in explicit:
            counter += 1
        result.append(_pad(counter))
    return result


def format_episode_id(run_id: str, ep_index: int, worker_id: str) -> str:
    """Make the id of one episode: ``{run_id}-w{worker_id}-ep{ep_index:06d}``.

    Parameters
    ----------
    run_id : str
        The run's ULID.
    ep_index : int
        The episode's index in its worker, ``>= 0``.
    worker_id : str
        The worker's normalized id (see :func:`normalize_worker_id`).

    Returns
    -------
    str
        An id that :func:`parse_episode_id` turns back into its parts.

    Raises
    ------
    ValueError
        ``run_id`` is not a ULID or ``ep_index`` is not an integer ``>= 0``.
    InvalidWorkerIdError
        ``worker_id`` is not a normalized worker id.

    Examples
    --------
    >>> nbtrain.format_episode_id("01HZX3N5V0A8B9C7D6E5F4G3H2", 12, "000001")
    '01HZX3N5V0A8B9C7D6E5F4G3H2-w000001-ep000012'
    """
    if not is_run_id(run_id):
        raise ValueError(f"run id {run_id!r} is not a 26-character ULID")
    if normalize_worker_id(worker_id) != worker_id:
        raise InvalidWorkerIdError(worker_id, "pass the normalized worker id")
    if type(ep_index) is not int:  # numpy's integers too (a DataFrame's ep_index column)
        if isinstance(ep_index, bool) or not isinstance(ep_index, numbers.Integral):
            raise ValueError(f"episode index {ep_index!r} must be an integer >= 0")
        ep_index = int(ep_index)
    if ep_index < 0:
        raise ValueError(f"episode index {ep_index!r} must be an integer >= 0")
    return f"{run_id}-{WORKER_ID_PREFIX}{worker_id}-ep{ep_index:06d}"


def parse_episode_id(text: str) -> tuple[str, str, int]:
    """Split an episode id made by :func:`format_episode_id` into its parts.

    Parameters
    ----------
    text : str
        An episode id.

    Returns
    -------
    tuple of (str, str, int)
        ``(run_id, worker_id, ep_index)``.

    Raises
    ------
    ValueError
        ``text`` is not an episode id, or not in the one spelling nbtrain writes.

    Examples
    --------
    >>> nbtrain.parse_episode_id("01HZX3N5V0A8B9C7D6E5F4G3H2-w000001-ep000012")
    ('01HZX3N5V0A8B9C7D6E5F4G3H2', '000001', 12)
    """
    match = _EPISODE_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not an episode id of the form '<run ULID>-w<worker id>-ep<index>'"
        )
    worker_id = match.group("worker")
    digits = match.group("ep")
    # Reject spellings format_episode_id never produces (non-canonical ids, extra zeros).
    if normalize_worker_id(worker_id) != worker_id or (len(digits) > 6 and digits[0] == "0"):
        raise ValueError(f"{text!r} is not a canonical episode id")
    return match.group("run"), worker_id, int(digits)
