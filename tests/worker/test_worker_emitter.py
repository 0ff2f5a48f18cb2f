"""The worker's telemetry emitter in-process, over a real pipe: batching into columnar
``Steps`` events, ordering, bounds, all-or-nothing encoding and pipe writes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.kit.events import progress
from tests.kit.pipes import read_available, read_n

from nbtrain.store.chunks_write import chunk_rows
from nbtrain.wire import events as ev
from nbtrain.wire.codec import decode_all
from nbtrain.worker.emitter import TelemetryEmitter
from nbtrain.worker.sinks import (
    PIPE_SIZE,
    FrameSink,
    JsonLinesSink,
    TelemetryClosedError,
    enlarge_pipe,
    write_all,
)

RUN = "01J00000000000000000000000"


def test_rows_become_one_columnar_batch_before_the_next_event(pipe: tuple[int, int]) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    for t in range(3):
        emitter.rows.append((0, t, np.int64(t), 0.5, False, t == 2, t + 10, {"e": t}, 1.0 + t))
    emitter.emit(progress(), push=False)
    assert read_available(r) == b""  # queued, not yet written
    emitter.flush()
    steps, prog = decode_all(read_available(r))
    assert isinstance(steps, ev.Steps)
    assert steps.step_index == [0, 1, 2]
    assert steps.action == [0, 1, 2]  # numpy ints encoded as plain ints
    assert steps.truncated == [False, False, True]
    assert steps.extras == [{"e": 0}, {"e": 1}, {"e": 2}]
    assert prog == progress()
    assert emitter.steps_sent == 3
    assert emitter.rows == []


def episode(ep: int) -> ev.Episode:
    return ev.Episode(
        run_id=RUN,
        worker_id="000001",
        ep_index=ep,
        episode_id=f"{RUN}-w000001-ep{ep:06d}",
        total_reward=1.0,
        length=2,
        terminated=True,
        truncated=False,
        seed=ep,
        started_at=1.0,
        ended_at=2.0,
        extras={},
    )


def test_held_episodes_follow_one_steps_event_per_flush(pipe: tuple[int, int]) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    for ep in range(3):
        for t in range(2):
            emitter.rows.append((ep, t, 0, 0.0, t == 1, False, t, None, 1.0))
        emitter.hold(episode(ep))
    emitter.rows.append((3, 0, 0, 0.0, False, False, 0, None, 1.0))  # episode 3 under way
    assert read_available(r) == b""
    emitter.flush()
    steps, *episodes = decode_all(read_available(r))
    assert isinstance(steps, ev.Steps)
    assert steps.ep_index == [0, 0, 1, 1, 2, 2, 3]  # every episode's steps come first
    assert episodes == [episode(0), episode(1), episode(2)]


def test_a_large_batch_goes_out_in_bounded_steps_events(pipe: tuple[int, int]) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    emitter.MAX_STEPS_PER_EVENT = 4
    for t in range(10):
        emitter.rows.append((0, t, 0, 0.0, False, False, t, None, 1.0))
    emitter.hold(episode(0))
    emitter.flush()
    *batches, last = decode_all(read_available(r))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert [i for b in batches for i in b.step_index] == list(range(10))
    assert last == episode(0)
    assert emitter.steps_sent == 10


def test_held_events_are_bounded(pipe: tuple[int, int]) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    emitter.MAX_HELD = 3
    for ep in range(2):
        emitter.hold(episode(ep))
    assert emitter.sink.pending() == 0  # held as objects, nothing encoded yet
    emitter.hold(episode(2))
    assert emitter.sink.pending() > 0  # the third one queued the held ones in the sink
    assert read_available(r) == b""  # ... without writing: few bytes
    emitter.MAX_PENDING = 0
    emitter.hold(episode(3))
    emitter.hold(episode(4))
    emitter.hold(episode(5))  # held again up to the bound, and now the bytes count too
    assert decode_all(read_available(r)) == [episode(i) for i in range(6)]


def test_a_pushed_event_sends_held_ones_before_it(pipe: tuple[int, int]) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    emitter.hold(episode(0))
    emitter.emit(progress())
    assert decode_all(read_available(r)) == [episode(0), progress()]


def test_extras_that_are_not_dicts_fail_clearly(pipe: tuple[int, int]) -> None:
    emitter = TelemetryEmitter(FrameSink(pipe[1]), RUN, "000001")
    emitter.rows.append((0, 0, 1, 0.0, False, False, 0, 0.25, 1.0))
    with pytest.raises(TypeError, match=r"learn\(\) returned float; it must return a dict or None"):
        emitter.flush()


def test_side_events_send_steps_and_held_events_first(pipe: tuple[int, int]) -> None:
    # Regression: an episode that ended just before a long step (a slow env, a stuck agent)
    # waited for that step to end; the heartbeat now sends it, after its steps.
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    emitter.emit(progress(), push=False)
    emitter.rows.append((0, 0, 1, 0.0, True, False, 0, None, 1.0))
    emitter.hold(episode(0))
    emitter.emit_side(progress())
    first, steps, ep, second = decode_all(read_available(r))
    assert (first, second) == (progress(), progress())
    assert isinstance(steps, ev.Steps)
    assert steps.step_index == [0]
    assert ep == episode(0)
    assert emitter.rows == []


def test_side_events_leave_bad_rows_for_the_main_thread(pipe: tuple[int, int]) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    emitter.rows.append((0, 0, 1, 0.0, False, False, 0, 0.25, 1.0))
    emitter.emit_side(progress())
    assert decode_all(read_available(r)) == [progress()]
    assert len(emitter.rows) == 1
    with pytest.raises(TypeError, match="returned float"):
        emitter.flush()


def test_an_unencodable_batch_is_all_or_nothing(pipe: tuple[int, int]) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    emitter.MAX_STEPS_PER_EVENT = 1
    emitter.rows.append((0, 0, 0, 0.0, False, False, 0, None, 1.0))
    emitter.rows.append((0, 1, 0, 0.0, True, False, object(), None, 1.0))  # cannot encode
    emitter.hold(episode(0))
    emitter.emit_side(progress())  # heartbeat: leaves the batch to the main thread
    assert decode_all(read_available(r)) == [progress()]  # no half-sent batch
    assert len(emitter.rows) == 2
    with pytest.raises(TypeError, match=r"environment.s observations or actions cannot be stored"):
        emitter.flush()  # main thread: raises and drops the batch with its episode
    assert emitter.rows == []
    assert read_available(r) == b""
    emitter.emit_final(progress())
    assert decode_all(read_available(r)) == [progress()]
    assert emitter.steps_sent == 0


def test_bad_extras_in_a_later_part_drop_the_whole_batch(pipe: tuple[int, int]) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    emitter.MAX_STEPS_PER_EVENT = 1
    emitter.rows.append((0, 0, 0, 0.0, False, False, 0, {"e": 1}, 1.0))  # a good first part
    emitter.rows.append((0, 1, 0, 0.0, True, False, 0, 0.5, 1.0))
    with pytest.raises(TypeError, match="returned float"):
        emitter.flush()
    assert read_available(r) == b""  # the good part was taken back too
    assert emitter.rows == []
    assert emitter.steps_sent == 0


def test_rows_appended_while_a_side_event_takes_them_are_kept(pipe: tuple[int, int]) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    total = 20_000
    done = threading.Event()

    def beat() -> None:
        while not done.is_set():
            emitter.emit_side(progress())
            time.sleep(0.0005)

    side = threading.Thread(target=beat)
    side.start()
    data = bytearray()  # decoded at the end: a read may end inside a frame
    try:
        for t in range(total):
            emitter.rows.append((0, t, 0, 0.0, False, False, 0, None, 1.0))
            if t % 500 == 0:
                data += read_available(r)
                time.sleep(0.001)  # let the side thread in now and then
    finally:
        done.set()
        side.join()
    emitter.flush()
    data += read_available(r)
    events = decode_all(bytes(data))
    steps = [i for e in events if isinstance(e, ev.Steps) for i in e.step_index]
    assert steps == list(range(total))
    assert sum(isinstance(e, ev.Steps) for e in events) > 1  # the side thread took some


def _episode_row(ep: int) -> tuple[Any, ...]:
    return (ep, 1.0, 1, True, False, ep, 1.0, 2.0, {"epsilon": 0.5})


def test_finished_episodes_go_out_as_one_batch_after_their_steps(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    for ep in range(3):
        emitter.rows.append((ep, 0, 0, 1.0, True, False, 5, None, 1.0))
        emitter.episodes.append(_episode_row(ep))
    emitter.flush()
    events = decode_all(read_available(r))
    assert [type(e).__name__ for e in events] == ["Steps", "Episodes"]
    batch = events[1]
    assert batch.ep_index == [0, 1, 2]
    assert [e.episode_id for e in batch.expand()] == [f"{RUN}-w000001-ep00000{i}" for i in range(3)]
    assert emitter.episodes == []
    assert emitter.rows == []


def test_episodes_taken_by_a_side_event_never_go_ahead_of_their_steps(
    pipe: tuple[int, int],
) -> None:
    """The heartbeat thread takes episodes and rows while the loop appends: an episode is
    always sent after every one of its steps."""
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")

    class SlowLen(list):  # type: ignore[type-arg]
        """Widens the race: the loop appends while a length just read is still in use."""

        def __len__(self) -> int:
            n = super().__len__()
            if threading.current_thread() is side:
                time.sleep(0.0002)
            return n

    emitter.rows = SlowLen()
    emitter.episodes = SlowLen()
    total = 20_000
    done = threading.Event()

    def beat() -> None:
        while not done.is_set():
            emitter.emit_side(progress())
            time.sleep(0.0002)

    data = bytearray()
    drained = threading.Event()

    def drain() -> None:  # the pipe must never stay full: writers would block for good
        while not drained.is_set():
            data.extend(read_available(r))
            time.sleep(0.001)

    side = threading.Thread(target=beat)
    reader = threading.Thread(target=drain)
    side.start()
    reader.start()
    try:
        for ep in range(total):
            emitter.rows.append((ep, 0, 0, 1.0, False, False, 0, None, 1.0))
            emitter.rows.append((ep, 1, 0, 1.0, True, False, 0, None, 1.0))
            emitter.episodes.append(_episode_row(ep))
    finally:
        done.set()
        side.join()
        emitter.flush()
        drained.set()
        reader.join()
    data += read_available(r)
    stepped: dict[int, int] = {}
    batches = 0
    for event in decode_all(bytes(data)):
        if isinstance(event, ev.Steps):
            for ep in event.ep_index:
                stepped[ep] = stepped.get(ep, 0) + 1
        elif isinstance(event, ev.Episodes):
            batches += 1
            assert all(stepped.get(ep) == 2 for ep in event.ep_index)
    assert len(stepped) == total
    assert batches > 1  # the side thread took some


def test_large_queues_are_written_at_once(pipe: tuple[int, int]) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    emitter.MAX_PENDING = 100
    emitter.emit(progress(), push=False)
    emitter.emit(progress(), push=False)
    assert len(decode_all(read_available(r))) == 2


def test_flush_returns_a_deadline_a_tenth_of_a_second_ahead(pipe: tuple[int, int]) -> None:
    emitter = TelemetryEmitter(FrameSink(pipe[1]), RUN, "000001")
    before = time.time()
    deadline = emitter.flush()
    assert before + 0.09 <= deadline <= time.time() + 0.11


def test_broken_pipe_is_telemetry_closed(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.close(r)
    with pytest.raises(TelemetryClosedError):
        write_all(w, b"x")


def test_enlarge_pipe(pipe: tuple[int, int], tmp_path: Path) -> None:
    assert enlarge_pipe(pipe[1]) == PIPE_SIZE
    with open(tmp_path / "f", "wb") as not_a_pipe:
        assert enlarge_pipe(not_a_pipe.fileno()) is None


def test_big_writes_go_through_whole(pipe: tuple[int, int]) -> None:
    r, w = pipe
    data = os.urandom(3 * PIPE_SIZE)
    received = bytearray()
    reader = threading.Thread(target=lambda: received.extend(read_n(r, len(data))))
    reader.start()
    write_all(w, data)
    reader.join(10)
    assert bytes(received) == data


def test_steps_encoded_early_go_out_before_their_episodes_at_the_flush(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    for t in range(5):
        emitter.rows.append((0, t, 0, 0.0, t == 4, False, t, {"e": t}, 1.0))
    emitter.episodes.append((0, 1.0, 5, True, False, 3, 1.0, 2.0, {}))
    emitter.encode_steps()
    assert emitter.rows == []
    assert read_available(r) == b""  # encoded, not written: the flush writes
    emitter.rows.append((1, 0, 0, 0.0, False, False, 0, None, 3.0))  # episode 1 under way
    emitter.flush()
    assert emitter.steps_sent == 6  # counted once their batch went out
    early, late, episodes = decode_all(read_available(r))
    assert isinstance(early, ev.Steps)
    assert early.step_index == [0, 1, 2, 3, 4]
    assert isinstance(late, ev.Steps)
    assert late.ep_index == [1]
    assert isinstance(episodes, ev.Episodes)
    assert episodes.ep_index == [0]


def test_a_dropped_batch_takes_back_its_early_encoded_steps(pipe: tuple[int, int]) -> None:
    # nothing half-sent: episode 0's steps were encoded early, but the batch they belong to
    # fails at episode 1, so episode 0 is dropped with it, steps and all
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    emitter.rows.append((0, 0, 0, 0.0, True, False, 0, {"e": 0}, 1.0))
    emitter.episodes.append((0, 1.0, 1, True, False, 3, 1.0, 2.0, {}))
    emitter.encode_steps()
    emitter.rows.append((1, 0, 0, 0.0, True, False, 0, 0.25, 1.0))  # learn() returned a float
    emitter.episodes.append((1, 1.0, 1, True, False, 4, 1.0, 2.0, {}))
    with pytest.raises(TypeError, match=r"agent.learn\(\) returned float"):
        emitter.encode_steps()
    assert emitter.rows == []
    assert emitter.episodes == []
    assert emitter.dropped == 1
    emitter.emit_final(progress())
    assert decode_all(read_available(r)) == [progress()]
    assert emitter.steps_sent == 0


def test_a_flush_that_fails_takes_back_the_early_encoded_steps_too(pipe: tuple[int, int]) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    emitter.rows.append((0, 0, 0, 0.0, True, False, 0, {"e": 0}, 1.0))
    emitter.encode_steps()
    emitter.episodes.append((0, 1.0, 1, True, False, 3, 1.0, 2.0, {"bad": object()}))
    with pytest.raises(
        TypeError, match=r"agent\.end_episode\(\) returned extras that cannot be stored"
    ):
        emitter.flush()  # the episode cannot be encoded: its early steps go too
    assert emitter.dropped == 1
    emitter.emit_final(progress())
    assert decode_all(read_available(r)) == [progress()]


def test_a_heartbeat_sends_early_encoded_steps_before_their_episode(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    emitter = TelemetryEmitter(FrameSink(w), RUN, "000001")
    for t in range(3):
        emitter.rows.append((0, t, 0, 0.0, t == 2, False, t, {"e": t}, 1.0))
    emitter.encode_steps()
    emitter.episodes.append((0, 1.0, 3, True, False, 3, 1.0, 2.0, {}))
    emitter.emit_side(progress())
    steps, episodes, beat = decode_all(read_available(r))
    assert isinstance(steps, ev.Steps)
    assert steps.step_index == [0, 1, 2]
    assert isinstance(episodes, ev.Episodes)
    assert episodes.ep_index == [0]
    assert beat == progress()
    assert emitter.steps_sent == 3
    assert emitter.dropped == 0


def test_rows_with_epsilon_and_td_error_are_stored_as_the_extras_dict_would_be(
    pipe: tuple[int, int],
) -> None:
    # the one-call tabular episode records (..., ε, TD error, ts) instead of a dict a step;
    # they go out as rows (StepRows), which the kernel turns into two extras columns, and it
    # stores the same JSON as for dicts
    r, w = pipe
    plain = TelemetryEmitter(FrameSink(w), RUN, "000001")
    td = TelemetryEmitter(FrameSink(w), RUN, "000001")
    td.td_extras = True
    rows = []
    for t in range(3):
        eps, delta = 0.5, -0.25 * t
        plain.rows.append((0, t, 1, 0.0, False, False, t, {"epsilon": eps, "td_error": delta}, 9.0))
        rows.append((0, t, 1, 0.0, False, False, t, eps, delta, 9.0))
    td.rows.extend(rows)
    plain.flush()
    (expected,) = decode_all(read_available(r))
    td.flush()
    (sent,) = decode_all(read_available(r))
    assert isinstance(sent, ev.StepRows)
    assert sent.rows == rows
    steps = sent.to_steps()
    assert steps.extras == []
    assert steps.extras_columns == {"epsilon": [0.5] * 3, "td_error": [0.0, -0.25, -0.5]}
    assert expected.extras[2] == {"epsilon": 0.5, "td_error": -0.5}
    assert chunk_rows(steps, "000001") == chunk_rows(expected, "000001")


def test_a_sink_for_people_gets_td_rows_as_steps_columns(pipe: tuple[int, int]) -> None:
    # --jsonl output is read by people and scripts: StepRows is the kernel's wire only
    r, w = pipe
    td = TelemetryEmitter(JsonLinesSink(w), RUN, "000001")
    td.td_extras = True
    td.rows.extend((0, t, 1, 0.0, False, t == 1, t, 0.5, 0.25, 9.0) for t in range(2))
    td.flush()
    (line,) = read_available(r).splitlines()
    event = json.loads(line)
    assert event["type"] == "steps"
    assert event["extras_columns"] == {"epsilon": [0.5, 0.5], "td_error": [0.25, 0.25]}
    assert event["truncated"] == [False, True]


def test_td_episodes_send_epsilon_as_a_column_and_people_still_get_dicts(
    pipe: tuple[int, int],
) -> None:
    # the one-call tabular episode records ε, not an {"epsilon": ε} dict an episode; the
    # kernel's batch carries it as the extras column, --jsonl as each episode's dict
    r, w = pipe
    rows = [(ep, 1.0, 6, True, False, 100 + ep, 1.0, 2.0, 0.5**ep) for ep in range(3)]
    td = TelemetryEmitter(FrameSink(w), RUN, "000001")
    td.td_extras = True
    td.episodes.extend(rows)
    td.flush()
    (sent,) = decode_all(read_available(r))
    assert isinstance(sent, ev.Episodes)
    assert (sent.extras, sent.extras_columns) == ([], {"epsilon": [1.0, 0.5, 0.25]})
    assert [e.extras for e in sent.expand()] == [{"epsilon": 0.5**ep} for ep in range(3)]
    people = TelemetryEmitter(JsonLinesSink(w), RUN, "000001")
    people.td_extras = True
    people.episodes.extend(rows)
    people.flush()
    lines = [json.loads(line) for line in read_available(r).splitlines()]
    assert [(e["type"], e["extras"]) for e in lines] == [
        ("episode", {"epsilon": 0.5**ep}) for ep in range(3)
    ]
