"""Worker, run and episode identifiers: normalization, auto-assignment, episode id round trip."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from nbtrain.errors import InvalidWorkerIdError, NbtrainError
from nbtrain.ids import (
    WORKER_ID_PREFIX,
    WORKER_ID_WIDTH,
    assign_worker_ids,
    format_episode_id,
    is_run_id,
    new_run_id,
    normalize_worker_id,
    parse_episode_id,
)

RUN = "01J9Z8Y7X6W5V4T3S2R1Q0P9NM"

run_ids = st.from_regex(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", fullmatch=True)
raw_names = st.from_regex(r"[a-z0-9][a-z0-9_]{0,31}", fullmatch=True)
worker_ids = st.one_of(st.integers(min_value=0, max_value=10**31 - 1), raw_names).map(
    normalize_worker_id
)
ep_indexes = st.integers(min_value=0, max_value=10**12)


def test_constants() -> None:
    assert (WORKER_ID_PREFIX, WORKER_ID_WIDTH) == ("w", 6)


def test_new_run_id_is_a_ulid() -> None:
    first, second = new_run_id(), new_run_id()
    assert is_run_id(first)
    assert is_run_id(second)
    assert len(first) == 26
    assert first != second


# "Z" * 26 is past the largest ULID (python-ulid refuses it): the first character is 0-7
@pytest.mark.parametrize(
    "value", [RUN.lower(), RUN[:-1], RUN + "0", "I" * 26, "Z" * 26, "8" + RUN[1:], 26, None]
)
def test_is_run_id_rejects(value: object) -> None:
    assert not is_run_id(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, "000007"),
        (0, "000000"),
        (1234567, "1234567"),
        (np.int64(7), "000007"),
        (np.uint8(12), "000012"),
        ("7", "000007"),
        ("0007", "000007"),
        ("w7", "000007"),
        ("W000007", "000007"),
        ("  w7\n", "000007"),
        ("GPU_A", "gpu_a"),
        ("gpu_a", "gpu_a"),
        ("a" * 32, "a" * 32),
        ("wabc", "wabc"),
        ("7_a", "7_a"),
    ],
)
def test_normalize_accepts(value: object, expected: str) -> None:
    assert normalize_worker_id(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        -1,
        np.int32(-3),
        "-1",
        "gpu-a",
        "../x",
        "gpu a",
        "_a",
        "a" * 33,
        "1" * 33,
        # Regression: a long run of zeros used to collapse to "000000".
        "0" * 40,
        "w" + "1" * 32,
        10**32,
        True,
        False,
        7.0,
        None,
        b"7",
        ["7"],
        "é",
    ],
)
def test_normalize_rejects_with_value_and_rule(value: object) -> None:
    with pytest.raises(InvalidWorkerIdError) as info:
        normalize_worker_id(value)
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, NbtrainError)
    assert err.value is value
    message = str(err)
    assert repr(value) in message
    assert "lower-case letters, digits and '_'" in message
    assert "integer >= 0" in message


def test_too_long_message_says_the_length_limit() -> None:
    with pytest.raises(InvalidWorkerIdError, match="at most 32 characters"):
        normalize_worker_id("0" * 40)


@given(st.integers(min_value=0, max_value=10**31 - 1))
def test_normalize_integer_is_padded_and_idempotent(number: int) -> None:
    worker_id = normalize_worker_id(number)
    assert int(worker_id) == number
    assert len(worker_id) == max(WORKER_ID_WIDTH, len(str(number)))
    assert normalize_worker_id(worker_id) == worker_id
    assert normalize_worker_id(f"w{number}") == worker_id
    assert normalize_worker_id(np.int64(number % 2**62)) == normalize_worker_id(number % 2**62)


@given(st.text(max_size=40))
def test_normalize_either_rejects_or_gives_a_fixed_point(text: str) -> None:
    try:
        worker_id = normalize_worker_id(text)
    except InvalidWorkerIdError:
        return
    assert re.fullmatch(r"[a-z0-9][a-z0-9_]{0,31}", worker_id)
    assert "-" not in worker_id
    assert normalize_worker_id(worker_id) == worker_id


def test_assign_fills_auto_ids_in_order() -> None:
    assert assign_worker_ids([7, "gpu_a", None]) == ["000007", "gpu_a", "000001"]
    assert assign_worker_ids([None, None, None]) == ["000001", "000002", "000003"]
    assert assign_worker_ids([]) == []


def test_assign_skips_taken_ids() -> None:
    assert assign_worker_ids([None, 1, None, "w3", None]) == [
        "000002",
        "000001",
        "000004",
        "000003",
        "000005",
    ]


def test_assign_accepts_numpy_integers_and_generators() -> None:
    assert assign_worker_ids(np.arange(3)) == ["000000", "000001", "000002"]
    assert assign_worker_ids(x for x in [np.int16(5), None]) == ["000005", "000001"]


@pytest.mark.parametrize(("first", "second"), [(7, "000007"), ("w7", np.int64(7)), ("A", "a")])
def test_assign_rejects_duplicates_naming_both_spellings(first: object, second: object) -> None:
    with pytest.raises(InvalidWorkerIdError) as info:
        assign_worker_ids([first, None, second])
    message = str(info.value)
    assert repr(first) in message
    assert repr(second) in message
    assert "unique" in message


def test_assign_rejects_invalid_ids() -> None:
    with pytest.raises(InvalidWorkerIdError, match="'gpu-a'"):
        assign_worker_ids([None, "gpu-a"])


@given(st.lists(st.one_of(st.none(), st.integers(0, 50), raw_names), max_size=12))
def test_assign_properties(requested: list[object]) -> None:
    normalized = [normalize_worker_id(x) for x in requested if x is not None]
    if len(set(normalized)) != len(normalized):
        with pytest.raises(InvalidWorkerIdError):
            assign_worker_ids(requested)
        return
    result = assign_worker_ids(requested)
    assert len(result) == len(requested) == len(set(result))
    autos = [r for r, x in zip(result, requested, strict=True) if x is None]
    assert autos == sorted(autos)
    assert all(a not in normalized for a in autos)
    # Auto ids are the smallest free ones.
    free = [f"{n:06d}" for n in range(1, 100) if f"{n:06d}" not in normalized]
    assert autos == free[: len(autos)]


@given(run_ids, ep_indexes, worker_ids)
@example(RUN, 42, "000007")
@example(RUN, 1_234_567, "wabc")
def test_episode_id_round_trip(run_id: str, ep_index: int, worker_id: str) -> None:
    text = format_episode_id(run_id, ep_index, worker_id)
    assert parse_episode_id(text) == (run_id, worker_id, ep_index)


def test_format_episode_id_example() -> None:
    assert format_episode_id(RUN, 42, "000007") == f"{RUN}-w000007-ep000042"


@pytest.mark.parametrize("index", [np.int64(42), np.int32(42), np.uint8(42)])
def test_format_episode_id_takes_numpy_integers(index: object) -> None:
    """Regression: the index as a DataFrame holds it was refused as "not an integer"."""
    assert format_episode_id(RUN, index, "000007") == f"{RUN}-w000007-ep000042"  # type: ignore[arg-type]


def test_the_worker_id_column_is_named_in_ids() -> None:
    from nbtrain import ids

    assert ids.WORKER_ID_COLUMN == "worker_id"
    assert "WORKER_ID_COLUMN" in ids.__all__


@pytest.mark.parametrize(
    ("run_id", "ep_index", "worker_id", "error", "match"),
    [
        ("not-a-ulid", 0, "000001", ValueError, "26-character ULID"),
        (RUN, -1, "000001", ValueError, "episode index -1"),
        (RUN, True, "000001", ValueError, "episode index True"),
        (RUN, 1.0, "000001", ValueError, "episode index 1.0"),
        (RUN, np.float64(1.0), "000001", ValueError, "episode index np.float64"),
        (RUN, np.int64(-1), "000001", ValueError, "episode index -1"),
        (RUN, np.bool_(True), "000001", ValueError, "episode index np.True_"),
        (RUN, 0, "7", InvalidWorkerIdError, "normalized"),
        (RUN, 0, 7, InvalidWorkerIdError, "normalized"),
        (RUN, 0, "GPU", InvalidWorkerIdError, "normalized"),
        (RUN, 0, "a-b", InvalidWorkerIdError, "'a-b'"),
    ],
)
def test_format_episode_id_rejects(
    run_id: str, ep_index: int, worker_id: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        format_episode_id(run_id, ep_index, worker_id)


@pytest.mark.parametrize(
    "text",
    [
        "",
        f"{RUN}-w000007-ep42",
        f"{RUN}-w000007-ep0000042",
        f"{RUN}-w7-ep000042",
        f"{RUN}-ww7-ep000042",
        f"{RUN}-wGPU-ep000042",
        f"{RUN}-w-ep000042",
        f"{RUN}-w000007-ep000042 ",
        f"{RUN}-w000007-ep-00042",
        f"{RUN.lower()}-w000007-ep000042",
        f"{RUN}-000007-ep000042",
        f"{RUN}-wa-b-ep000042",
        None,
        42,
    ],
)
def test_parse_episode_id_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="episode id"):
        parse_episode_id(text)


run_parts = st.one_of(run_ids, run_ids.map(str.lower), st.just(RUN[:-1]), st.just("O" * 26))
worker_parts = st.one_of(
    worker_ids, raw_names, st.sampled_from(["7", "w7", "W000007", "GPU", "", "a-b", "0" * 40])
)
ep_parts = st.from_regex(r"-?[0-9]{0,9}", fullmatch=True)


@given(run_parts, worker_parts, ep_parts)
def test_parse_rejects_anything_format_cannot_produce(run: str, worker: str, ep: str) -> None:
    text = f"{run}-w{worker}-ep{ep}"
    try:
        run_id, worker_id, ep_index = parse_episode_id(text)
    except ValueError:
        return
    assert format_episode_id(run_id, ep_index, worker_id) == text


@given(st.text(max_size=80))
def test_parse_arbitrary_text(text: str) -> None:
    try:
        parsed = parse_episode_id(text)
    except ValueError:
        return
    assert format_episode_id(parsed[0], parsed[2], parsed[1]) == text
