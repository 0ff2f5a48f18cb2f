"""The one-line outcome of a run and the per-worker colours."""

from __future__ import annotations

import pytest

from nbtrain.errors import InvalidWorkerIdError
from nbtrain.widgets.colours import PALETTE, worker_colour
from nbtrain.widgets.outcome import format_duration, outcome_text


def test_outcome_is_none_while_a_worker_still_goes() -> None:
    assert outcome_text([{"status": "completed"}, {"status": "running"}]) is None
    assert outcome_text([]) is None


def test_completed_says_how_long_it_took() -> None:
    rows = [
        {"status": "completed", "started_at": 10.0, "ended_at": 11.5},
        {"status": "completed", "started_at": 10.2, "ended_at": 12.1},
    ]
    assert outcome_text(rows) == "completed in 2.1 s"


def test_failures_name_their_count_and_first_error_line() -> None:
    rows = [
        {"status": "failed", "error": "\nValueError: boom\n  more"},
        {"status": "failed", "error": "ValueError: other"},
        {"status": "failed", "error": None},
    ]
    assert outcome_text(rows) == "3 failed: ValueError: boom"
    mixed = [{"status": "failed", "error": "E"}, {"status": "completed"}, {"status": "completed"}]
    assert outcome_text(mixed) == "1 failed: E (2 others completed)"
    assert outcome_text([{"status": "failed"}]) == "1 failed"


def test_stopped_runs_say_so() -> None:
    rows = [
        {"status": "stopped", "started_at": 0.0, "ended_at": 42.0},
        {"status": "completed", "started_at": 0.0, "ended_at": 30.0},
    ]
    assert outcome_text(rows) == "stopped in 42 s (1 of 2 stopped)"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (2.14, "2.1 s"), (42.4, "42 s"), (185, "3 min 05 s"), (3725, "1 h 02 min")],
)
def test_durations_read_as_a_person_writes_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_worker_colours_follow_the_id_not_the_position() -> None:
    assert worker_colour(1) == worker_colour("000001") == worker_colour("w1") == PALETTE[0]
    assert worker_colour(2) == PALETTE[1]
    assert worker_colour(9) == PALETTE[0]  # the palette repeats after eight
    assert worker_colour("gpu_a") == worker_colour("GPU_A")  # named: stable hash
    assert worker_colour("gpu_a") in PALETTE
    assert "#2ca02c" not in PALETTE  # green and red mean completed and failed
    assert "#d62728" not in PALETTE
    with pytest.raises(InvalidWorkerIdError):
        worker_colour("gpu-a")


def test_a_run_s_workers_never_share_a_colour_while_the_palette_lasts() -> None:
    # Regression (QA): 000000 and 000008 were both grey in one dashboard.
    from nbtrain.widgets.colours import worker_colours

    ids = ["000000", "000001", "000008"]
    colours = worker_colours(ids)
    assert list(colours) == ids
    assert len(set(colours.values())) == 3
    assert colours["000000"] == worker_colour("000000")  # the first keeps its own
    assert colours["000001"] == worker_colour("000001")
    named = [f"w{i}" for i in range(1, 9)] + ["gpu_a", "gpu_b", "zz"]
    eight = worker_colours([*named[:8], "gpu_a"])
    assert len(set(eight.values())) == len(PALETTE)  # nine workers: eight colours, all used
    assert worker_colours(named[::-1]) == worker_colours(named)  # order given: no matter
