"""Frame encoding and decoding: round trips, exact errors, counters, JSON lines."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.kit.wire_strategies import events, json_events, step_rows

from nbtrain.errors import (
    BadMagicError,
    FrameTooLargeError,
    MalformedPayloadError,
    TruncatedFrameError,
    UnsupportedVersionError,
    WireError,
)
from nbtrain.wire import events as ev
from nbtrain.wire.codec import (
    HEADER_SIZE,
    MAGIC,
    FrameDecoder,
    FrameEncoder,
    decode_all,
    encode_frame,
    event_to_json,
)


def progress(n: int = 0) -> ev.Progress:
    return ev.Progress(
        run_id="r", worker_id="000001", ts=1.5, episodes_done=n, steps_done=n, steps_per_s=2.0,
        ep_index=n,
    )  # fmt: skip


def header(version: int, length: int) -> bytes:
    return struct.pack(">3sBI", MAGIC, version, length)


def test_header_layout() -> None:
    frame = encode_frame(progress())
    assert frame[:3] == b"NBT"
    assert frame[3] == ev.WIRE_VERSION
    assert int.from_bytes(frame[4:8], "big") == len(frame) - HEADER_SIZE
    assert msgspec.msgpack.decode(frame[8:])["type"] == "progress"


def test_frame_encoder_matches_encode_frame_and_reuses_buffer() -> None:
    encoder = FrameEncoder()
    small, big = (
        progress(),
        ev.Frame(
            run_id="r", worker_id="a", ep_index=0, step_index=0, kind="rgb_array", data=b"x" * 5000
        ),
    )
    assert encoder.encode(big) == encode_frame(big)
    assert encoder.encode(small) == encode_frame(small)  # shorter after longer: no leftovers


def test_an_event_that_cannot_be_encoded_leaves_no_partial_frame() -> None:
    # Regression: the header space was reserved before encoding, so a failing encode left
    # garbage that made the kernel report a bad magic number.
    out = bytearray(encode_frame(progress()))
    before = bytes(out)
    bad = ev.Episode(
        run_id="r", worker_id="a", ep_index=0, episode_id="x", total_reward=0.0, length=1,
        terminated=True, truncated=False, seed=0, started_at=0.0, ended_at=0.0,
        extras={"model": object()},
    )  # fmt: skip
    with pytest.raises(NotImplementedError):
        FrameEncoder().append(bad, out)
    assert bytes(out) == before


@given(st.lists(events, max_size=6), st.data())
@settings(max_examples=150, deadline=None)
def test_round_trip_in_arbitrary_chunks(items: list[Any], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(item) for item in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    decoder = FrameDecoder()
    out: list[Any] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out.extend(decoder.feed(stream[start:end]))
    assert decoder.close() == []
    assert out == items
    assert (decoder.frames, decoder.bytes, decoder.errors) == (len(items), len(stream), 0)


def test_control_frames() -> None:
    assert decode_all(encode_frame(ev.Stop()), kind="control") == [ev.Stop()]
    with pytest.raises(MalformedPayloadError, match="not a valid control"):
        decode_all(encode_frame(ev.Stored(episodes="7")), kind="control")  # type: ignore[arg-type]
    with pytest.raises(MalformedPayloadError, match="not a valid control"):
        decode_all(encode_frame(progress()), kind="control")
    with pytest.raises(ValueError, match="'both'"):
        FrameDecoder(kind="both")


@given(st.lists(st.one_of(st.just(ev.Stop()), st.builds(ev.Stored, st.integers(0, 2**53))),
                max_size=8), st.data())  # fmt: skip
def test_control_frames_round_trip_whatever_the_read_sizes(
    items: list[ev.Stop | ev.Stored], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(item) for item in items)
    decoder = FrameDecoder(kind="control")
    out: list[object] = []
    start = 0
    while start < len(stream):
        end = data.draw(st.integers(start + 1, len(stream)))
        out.extend(decoder.feed(stream[start:end]))
        start = end
    assert out == items
    assert decoder.close() == []


def test_bad_magic_is_reported_once_per_garbage_run() -> None:
    decoder = FrameDecoder()
    out = decoder.feed(b"hello world" * 50 + encode_frame(progress(1)))
    assert isinstance(out[0], BadMagicError)
    assert "b'hel'" in str(out[0])
    assert "b'NBT'" in str(out[0])
    assert out[1:] == [progress(1)]
    assert decoder.errors == 1


def test_unsupported_version_names_both_versions() -> None:
    payload = msgspec.msgpack.encode(progress())
    out = FrameDecoder().feed(header(9, len(payload)) + payload + encode_frame(progress(2)))
    assert isinstance(out[0], UnsupportedVersionError)
    assert "version 9" in str(out[0])
    assert f"version {ev.WIRE_VERSION} only" in str(out[0])
    assert out[1:] == [progress(2)]


def test_frame_too_large_is_not_allocated_and_stream_recovers() -> None:
    decoder = FrameDecoder(max_payload=1000)
    out = decoder.feed(header(ev.WIRE_VERSION, 1001) + encode_frame(progress(3)))
    assert isinstance(out[0], FrameTooLargeError)
    assert "1001 payload bytes" in str(out[0])
    assert "1000-byte limit" in str(out[0])
    assert out[1:] == [progress(3)]


def test_encoder_refuses_oversized_events() -> None:
    frame = ev.Frame(
        run_id="r", worker_id="a", ep_index=0, step_index=0, kind="ansi", text="x" * 99
    )
    with pytest.raises(FrameTooLargeError, match=r"Frame event encodes to .* over the 50-byte"):
        encode_frame(frame, max_payload=50)
    with pytest.raises(FrameTooLargeError, match="50-byte"):
        FrameEncoder(max_payload=50).encode(frame)


def test_announced_size_waits_for_bytes_without_buffering_more() -> None:
    decoder = FrameDecoder()
    big = header(ev.WIRE_VERSION, 60 * 1024 * 1024)
    assert decoder.feed(big) == []
    assert len(decoder._buf) == HEADER_SIZE  # nothing allocated for the announced 60 MiB
    (error,) = decoder.close()
    assert isinstance(error, TruncatedFrameError)
    assert "announcing 62914560 payload bytes has 0" in str(error)


def test_malformed_payload_then_recovery() -> None:
    junk = b"\xc1\xc1\xc1"  # 0xc1 is never valid msgpack
    out = FrameDecoder().feed(header(ev.WIRE_VERSION, 3) + junk + encode_frame(progress(4)))
    assert isinstance(out[0], MalformedPayloadError)
    assert "not a valid event" in str(out[0])
    assert out[1:] == [progress(4)]


def test_errors_after_good_frames_keep_order_offsets_and_counters() -> None:
    """Good frames before a bad one take the decoder's fast path; the bad one and what
    follows it must still come out in stream order, with the bad frame's own offset."""
    good = encode_frame(progress(1))
    junk = header(ev.WIRE_VERSION, 3) + b"\xc1\xc1\xc1"
    huge = header(ev.WIRE_VERSION, 5000)
    stream = good * 2 + junk + good + huge + good + b"zzz" + good
    for chunk in (len(stream), 7, 1):
        decoder = FrameDecoder(max_payload=4000)
        out: list[Any] = []
        for i in range(0, len(stream), chunk):
            out += decoder.feed(stream[i : i + chunk])
        kinds = [type(x).__name__ for x in out]
        assert kinds == ["Progress", "Progress", "MalformedPayloadError", "Progress",
                         "FrameTooLargeError", "Progress", "BadMagicError", "Progress"]  # fmt: skip
        assert f"frame at byte {2 * len(good)} " in str(out[2])
        assert f"frame at byte {3 * len(good) + len(junk)} " in str(out[4])
        assert (decoder.frames, decoder.errors, decoder.bytes) == (5, 3, len(stream))
        assert decoder.close() == []


def test_unknown_field_and_unknown_type_are_malformed() -> None:
    for payload in (
        msgspec.msgpack.encode({"type": "nope", "run_id": "r", "worker_id": "a"}),
        msgspec.msgpack.encode({**msgspec.to_builtins(progress()), "extra": 1}),
    ):
        with pytest.raises(MalformedPayloadError):
            decode_all(header(ev.WIRE_VERSION, len(payload)) + payload)


def test_truncated_at_close_and_decode_all_is_strict() -> None:
    frame = encode_frame(progress())
    for cut in (1, 5, HEADER_SIZE, len(frame) - 1):
        decoder = FrameDecoder()
        assert decoder.feed(frame[:cut]) == []
        (error,) = decoder.close()
        assert isinstance(error, TruncatedFrameError)
        assert decoder.close() == []  # closing twice reports nothing new
        with pytest.raises(TruncatedFrameError, match="stream ended"):
            decode_all(frame + frame[:cut])
    assert decode_all(frame * 3) == [progress()] * 3
    assert decode_all(b"") == []


def test_finish_recovers_frames_swallowed_by_a_lying_length() -> None:
    good = [progress(i) for i in range(3)]
    stream = header(ev.WIRE_VERSION, 10_000) + b"".join(encode_frame(g) for g in good)
    decoder = FrameDecoder()
    assert decoder.feed(stream) == []  # waiting for 10 000 bytes that never come
    out = decoder.finish()
    assert isinstance(out[0], TruncatedFrameError)
    assert out[1:] == good


def test_partial_magic_at_end_of_garbage_is_kept() -> None:
    frame = encode_frame(progress(5))
    decoder = FrameDecoder()
    out = decoder.feed(b"zzzz" + frame[:2])
    assert [type(x) for x in out] == [BadMagicError]
    assert decoder.feed(frame[2:]) == [progress(5)]


def test_errors_are_wire_errors_and_value_errors() -> None:
    for cls in (BadMagicError, UnsupportedVersionError, FrameTooLargeError, TruncatedFrameError,
                MalformedPayloadError):  # fmt: skip
        assert issubclass(cls, WireError)
        assert issubclass(cls, ValueError)


def test_event_to_json_is_one_line_with_base64_bytes() -> None:
    frame = ev.Frame(
        run_id="r", worker_id="a", ep_index=1, step_index=2, kind="rgb_array",
        data=bytes([0, 255, 10]), shape=[1, 1, 3],
    )  # fmt: skip
    line = event_to_json(frame)
    assert b"\n" not in line
    parsed = json.loads(line)
    assert parsed["type"] == "frame"
    assert parsed["shape"] == [1, 1, 3]
    assert base64.b64decode(parsed["data"]) == bytes([0, 255, 10])
    assert msgspec.json.decode(line, type=ev.Event) == frame


@given(json_events)
@settings(max_examples=100, deadline=None)
def test_every_event_has_a_json_line(item: Any) -> None:
    line = event_to_json(item)
    assert b"\n" not in line
    assert msgspec.json.decode(line, type=ev.Event) == item


def test_step_extras_reads_either_form() -> None:
    base: dict[str, Any] = {
        "run_id": "r", "worker_id": "000001", "ep_index": [0, 0], "step_index": [0, 1],
        "action": [1, 2], "reward": [0.0, 1.0], "terminated": [False, True],
        "truncated": [False, False], "obs": [3, 4], "ts": [1.0, 2.0],
    }  # fmt: skip
    dicts = ev.Steps(**base, extras=[{"a": 1}, None])
    assert dicts.step_extras() == [{"a": 1}, None]
    columns = ev.Steps(**base, extras=[], extras_columns={"a": [1, 2], "b": [0.5, None]})
    assert columns.step_extras() == [{"a": 1, "b": 0.5}, {"a": 2, "b": None}]
    assert list(columns.step_extras()[0]) == ["a", "b"]
    empty = ev.Steps(**base, extras=[], extras_columns={})
    assert empty.step_extras() == [{}, {}]
    short = ev.Steps(**base, extras=[], extras_columns={"a": [1]})
    with pytest.raises(ValueError, match=r"column 'a' has 1 values for 2 steps"):
        short.step_extras()


@given(step_rows)
@settings(max_examples=60)
def test_step_rows_become_the_same_steps_as_columns(rows: ev.StepRows) -> None:
    steps = rows.to_steps()
    assert len(steps) == len(rows)
    assert (steps.run_id, steps.worker_id) == (rows.run_id, rows.worker_id)
    assert steps.extras == []
    assert steps.extras_columns is not None
    columns = [
        steps.ep_index, steps.step_index, steps.action, steps.reward, steps.terminated,
        steps.truncated, steps.obs, steps.extras_columns["epsilon"],
        steps.extras_columns["td_error"], steps.ts,
    ]  # fmt: skip
    assert [tuple(values) for values in zip(*columns, strict=True)] == rows.rows
    assert steps.step_extras() == [{"epsilon": r[7], "td_error": r[8]} for r in rows.rows]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ((0, 1, 2, 0.0, False, False, 3, 0.5, 0.0), "length 10, got 9"),
        ((0, 1, 2, "x", False, False, 3, 0.5, 0.0, 1.0), "Expected `float`, got `str`"),
        ((0, 1, 2, 0.0, 0, False, 3, 0.5, 0.0, 1.0), "Expected `bool`, got `int`"),
        ((-0.5, 1, 2, 0.0, False, False, 3, 0.5, 0.0, 1.0), "Expected `int`, got `float`"),
    ],
)
def test_a_step_row_of_the_wrong_shape_is_a_malformed_frame(
    row: tuple[Any, ...], problem: str
) -> None:
    class LooseRows(msgspec.Struct, tag_field="type", tag="step_rows", kw_only=True):
        run_id: str
        worker_id: str
        rows: list[tuple[Any, ...]]

    good = ev.StepRows(
        run_id="r", worker_id="000001", rows=[(0, 0, 1, 0.0, False, True, 2, 0.5, 0.25, 1.0)]
    )
    bad = encode_frame(LooseRows(run_id="r", worker_id="000001", rows=[row]))
    decoder = FrameDecoder()
    items = decoder.feed(bad + encode_frame(good))
    assert isinstance(items[0], MalformedPayloadError)
    assert problem in str(items[0])
    assert items[1:] == [good]
