"""Column conversion from SQLite values (Python sequences) to pandas dtypes.

Kinds: ``str``; ``cat`` (worker_id: categorical, categories exactly the values present, sorted);
``int`` (int64); ``nint`` (nullable int: float64 with NaN, so the dtype stays numpy);
``float``; ``bool``; ``time`` (REAL Unix seconds -> ``datetime64[ns, UTC]``); ``json`` (JSON
text -> parsed dicts/lists, for small tables only: per-step ``extras`` stay text, see
:func:`expand_extras`); ``value`` (obs/action: int64 when discrete, float64 for float
scalars, lists for arrays, see :func:`value_column`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeAlias

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa

from nbtrain.log_codes import LOG_SERVICE_SQLITE_DESERIALIZATION_FAILED
from nbtrain.logs import log

# A column of values as fetched from sqlite3 (a tuple or list).
Values: TypeAlias = Sequence[Any]

_decode = msgspec.json.decode


def parse_json(texts: Sequence[str | None]) -> list[Any]:
    """Parse many JSON texts with one decoder call (joined into one array), row by row on error."""
    try:
        out: list[Any] = _decode("[" + ",".join("null" if t is None else t for t in texts) + "]")
        if len(out) == len(texts):
            return out
    except (msgspec.DecodeError, TypeError):
        pass
    result: list[Any] = []
    for text in texts:
        try:
            result.append(None if text is None else _decode(text))
        except (msgspec.DecodeError, TypeError) as exc:
            log(
                logging.WARNING,
                LOG_SERVICE_SQLITE_DESERIALIZATION_FAILED,
                "stored JSON %.60r cannot be parsed: %s",
                text,
                exc,
            )
            result.append(text)
    return result


def _numeric(values: Values, dtype: str) -> np.ndarray[Any, Any]:
    if dtype == "float64":
        return np.array([np.nan if v is None else v for v in values], dtype=dtype)
    return np.array([0 if v is None else v for v in values], dtype=dtype)


def value_column(values: Sequence[Any]) -> Any:
    """obs/action: int64 when every value is an int (or bool), float64 when numbers include
    floats, else an object array (lists for array observations; JSON text is parsed)."""
    kinds = set(map(type, values))
    try:
        if kinds <= {int, bool}:
            return np.array(values, dtype="int64")
        if kinds <= {int, float, bool}:
            return np.array(values, dtype="float64")
    except OverflowError:
        pass
    if str in kinds:
        values = [parse_json([v])[0] if isinstance(v, str) else v for v in values]
    return pd.Series(values, dtype=object).to_numpy()


def _category(values: Values) -> Any:
    cat = pd.Categorical(pd.Series(list(values), dtype="str"))
    return cat.reorder_categories(sorted(cat.categories))


def _strings(values: Values) -> Any:
    return pd.array(list(values), dtype="str")


def convert(kind: str, values: Values) -> Any:
    if kind == "cat":
        return _category(values)
    if kind == "str":
        return _strings(values)
    if kind == "int":
        return _numeric(values, "int64")
    if kind in ("nint", "float"):
        return _numeric(values, "float64")
    if kind == "bool":
        return _numeric(values, "int64").astype(bool)
    if kind == "time":
        return pd.to_datetime(_numeric(values, "float64"), unit="s", utc=True).as_unit("ns")
    if kind == "json":
        return pd.Series(parse_json(list(values)), dtype=object).to_numpy()
    if kind == "value":
        return value_column(values)
    raise AssertionError(f"unknown column kind {kind!r}")


def constant(kind: str, value: str, n: int) -> Any:
    """A column holding one value (the run id or worker id a query filtered on)."""
    if kind == "cat":
        return pd.Categorical.from_codes(np.zeros(n, dtype="int8"), categories=pd.Index([value]))
    return pa.repeat(pa.scalar(value, pa.string()), n).to_pandas().astype("str").array


def frame(kinds: dict[str, str], columns: dict[str, Values]) -> pd.DataFrame:
    """A DataFrame whose columns follow ``columns``' order, each converted by its kind."""
    data = {name: convert(kinds[name], values) for name, values in columns.items()}
    return pd.DataFrame(data, columns=list(columns))


def expand_extras(
    df: pd.DataFrame, column: str = "extras", prefix: str = "", *, rename_clashes: bool = False
) -> pd.DataFrame:
    """Turn the keys of a frame's JSON ``extras`` column into columns.

    Extras stay JSON text in step and episode frames because parsing a million small dicts
    costs more than reading the rows; this parses them on request, in one decoder call.
    ``Run.steps(..., extras="columns")`` does the same.

    Parameters
    ----------
    df : pandas.DataFrame
        A frame with a column of JSON objects (text), such as ``run.steps()``.
    column : str, optional
        The column to expand; it is dropped from the result.
    prefix : str, optional
        Put before each new column's name (to avoid clashes).
    rename_clashes : bool, optional
        A key that is also a column's name (an agent's ``length``) becomes
        ``extras_<key>`` instead of an error; ``extras="columns"`` reads do this.

    Returns
    -------
    pandas.DataFrame
        ``df`` without ``column``, with one column per key (numbers become float64; a key
        missing from a row is NaN).

    Raises
    ------
    ValueError
        ``df`` has no ``column``, or a key clashes with an existing column (pass ``prefix``
        or ``rename_clashes=True``).

    Examples
    --------
    >>> steps = run.steps(worker_id=1, columns=["step_index", "extras"])  # doctest: +SKIP
    >>> nbtrain.expand_extras(steps)["epsilon"]  # doctest: +SKIP
    """
    if column not in df.columns:
        raise ValueError(f"no column {column!r} to expand; columns: {', '.join(df.columns)}")
    texts = [t if isinstance(t, str) else None for t in df[column].tolist()]
    parsed = [d if isinstance(d, dict) else {} for d in parse_json(texts)]
    wide = pd.DataFrame.from_records(parsed, index=df.index).add_prefix(prefix)
    for name in wide.columns:
        if wide[name].map(lambda v: isinstance(v, int | float) and not isinstance(v, bool)).all():
            wide[name] = wide[name].astype("float64")
    clash = [c for c in wide.columns if c in df.columns and c != column]
    if clash and not rename_clashes:
        raise ValueError(
            f"extras keys {clash} clash with columns; pass prefix= (e.g. "
            f"nbtrain.expand_extras(df, prefix='extras_'))"
        )
    taken, renamed = {*df.columns, *wide.columns}, {}
    for key in clash:  # extras_<key>, or extras_<key>_2... if the agent has that key too
        name, n = f"extras_{key}", 1
        while name in taken:
            n += 1
            name = f"extras_{key}_{n}"
        taken.add(name)
        renamed[key] = name
    return pd.concat([df.drop(columns=[column]), wide.rename(columns=renamed)], axis=1)
