"""Garbage never escapes ``feed`` as an exception, never hangs it, and valid frames that
follow garbage are still recovered."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.kit.wire_strategies import events

from nbtrain.errors import WireError
from nbtrain.wire.codec import MAGIC, FrameDecoder, encode_frame
from nbtrain.wire.events import WIRE_VERSION

FUZZ = settings(max_examples=150, deadline=2000)


def feed_in_chunks(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[Any]:
    out: list[Any] = []
    points = sorted({min(c, len(data)) for c in cuts})
    for start, end in zip([0, *points], [*points, len(data)], strict=True):
        out.extend(decoder.feed(data[start:end]))
    return out


def events_only(items: list[Any]) -> list[Any]:
    return [item for item in items if not isinstance(item, WireError)]


garbage = st.one_of(
    st.binary(max_size=200),
    # Garbage that looks like the start of a frame is the hard case.
    st.builds(lambda tail: MAGIC + tail, st.binary(max_size=20)),
    st.builds(
        lambda version, length, tail: struct.pack(">3sBI", MAGIC, version, length) + tail,
        st.integers(0, 255),
        st.integers(0, 2**32 - 1),
        st.binary(max_size=30),
    ),
)


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=8))
@FUZZ
def test_random_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(max_payload=4096)
    out = feed_in_chunks(decoder, data, cuts) + decoder.close()
    assert all(isinstance(item, WireError) or hasattr(item, "worker_id") for item in out)
    assert decoder.bytes == len(data)


@given(garbage, st.lists(events, min_size=1, max_size=4), st.lists(st.integers(0, 3000)))
@FUZZ
def test_frames_after_garbage_are_recovered(junk: bytes, items: list[Any], cuts: list[int]) -> None:
    stream = junk + b"".join(encode_frame(item) for item in items)
    decoder = FrameDecoder(max_payload=1 << 20)
    out = feed_in_chunks(decoder, stream, cuts) + decoder.finish()
    recovered = events_only(out)
    # A lying header may swallow frames until the end; finish() rescans them. Garbage can
    # never eat a valid frame that starts after it ends.
    assert recovered[-len(items) :] == items
    if junk and not junk.startswith(MAGIC[:1]):
        assert isinstance(out[0], WireError)


@given(
    st.lists(events, min_size=2, max_size=5),
    st.data(),
)
@FUZZ
def test_bit_flips_cost_at_most_the_damaged_frame(items: list[Any], data: st.DataObject) -> None:
    frames = [encode_frame(item) for item in items]
    victim = data.draw(st.integers(0, len(frames) - 1))
    damaged = bytearray(frames[victim])
    for _ in range(data.draw(st.integers(1, 3))):
        bit = data.draw(st.integers(0, len(damaged) * 8 - 1))
        damaged[bit // 8] ^= 1 << (bit % 8)
    frames[victim] = bytes(damaged)
    decoder = FrameDecoder(max_payload=1 << 20)
    out = decoder.feed(b"".join(frames)) + decoder.finish()
    recovered = events_only(out)
    expected = items[:victim] + items[victim + 1 :]
    # Every undamaged frame survives, in order (the damaged one may or may not decode).
    it = iter(recovered)
    assert all(any(got == want for got in it) for want in expected)


@given(st.lists(events, min_size=1, max_size=4), st.data())
@FUZZ
def test_truncation_reports_and_keeps_complete_frames(
    items: list[Any], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(item) for item in items)
    cut = data.draw(st.integers(0, len(stream)))
    decoder = FrameDecoder()
    out = decoder.feed(stream[:cut]) + decoder.close()
    complete = 0
    offset = 0
    for item in items:
        offset += len(encode_frame(item))
        complete += offset <= cut
    assert events_only(out) == items[:complete]
    assert len(out) - complete == (0 if cut in {0, offset} or _on_boundary(items, cut) else 1)


def _on_boundary(items: list[Any], cut: int) -> bool:
    offset = 0
    for item in items:
        if offset == cut:
            return True
        offset += len(encode_frame(item))
    return offset == cut


@given(st.integers(0, 2**32 - 1), st.integers(1, 10_000))
@settings(max_examples=100, deadline=2000)
def test_oversized_lengths_never_allocate(length: int, limit: int) -> None:
    decoder = FrameDecoder(max_payload=limit)
    out = decoder.feed(struct.pack(">3sBI", MAGIC, WIRE_VERSION, length) + b"x" * 10)
    assert len(decoder._buf) <= 18
    if length > limit:
        assert len(out) == 1
        assert "limit" in str(out[0])
