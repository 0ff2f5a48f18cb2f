"""Framing for the telemetry and control pipes (layout in ``docs/wire.md``).

A frame is an 8-byte header (``b"NBT"``, one version byte, a big-endian ``uint32`` payload
length) followed by one msgpack-encoded event. The decoder is incremental and forgiving: it
reports a bad frame inline, as an error object in stream order, then resynchronises at the
next magic, so one corrupt frame never costs the rest of a worker's telemetry. It never
allocates a frame's announced size up front; it only ever holds bytes that really arrived.
"""

from __future__ import annotations

import struct
from typing import Any, Literal

import msgspec

from nbtrain.errors import (
    BadMagicError,
    FrameTooLargeError,
    MalformedPayloadError,
    TruncatedFrameError,
    UnsupportedVersionError,
    WireError,
)
from nbtrain.wire.events import WIRE_VERSION, Control, Event

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "HEADER_SIZE",
    "MAGIC",
    "FrameDecoder",
    "FrameEncoder",
    "decode_all",
    "encode_frame",
    "event_to_json",
    "to_builtins_hook",
]

MAGIC = b"NBT"
HEADER_SIZE = 8
DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024

_HEADER = struct.Struct(">3sBI")
_LENGTH = struct.Struct(">I")  # the payload length, at offset 4 of a header
_HEADER_PREFIX = MAGIC + bytes([WIRE_VERSION])

DecodedItem = Any  # an Event (or Control) struct, or a WireError


def to_builtins_hook(obj: Any) -> Any:
    """msgspec ``enc_hook``: numpy scalars and arrays (anything with ``tolist``) become plain
    numbers and lists, so an env's ``np.int64`` observation needs no per-step conversion."""
    tolist = getattr(obj, "tolist", None)
    if tolist is None:
        raise NotImplementedError(f"cannot encode {type(obj).__name__} objects")
    return tolist()


class FrameEncoder:
    """Encodes messages into frames, reusing one msgspec encoder and one scratch buffer.

    Not thread-safe: one per writer (the worker's emitter holds its own under its lock).
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._encoder = msgspec.msgpack.Encoder(enc_hook=to_builtins_hook)
        self._buf = bytearray()

    def append(self, msg: msgspec.Struct, out: bytearray) -> None:
        """Encode one frame onto the end of ``out`` (batches many frames into one write)."""
        start = len(out)
        try:
            self._encoder.encode_into(msg, out, start + HEADER_SIZE)
        except BaseException:
            del out[start:]  # never leave a half-written frame behind
            raise
        size = len(out) - start - HEADER_SIZE
        if size > self.max_payload:
            del out[start:]
            raise FrameTooLargeError(
                f"a {type(msg).__name__} event encodes to {size} bytes, over the "
                f"{self.max_payload}-byte frame limit"
            )
        _HEADER.pack_into(out, start, MAGIC, WIRE_VERSION, size)

    def encode(self, msg: msgspec.Struct) -> bytes:
        buf = self._buf
        # Encode after a placeholder header, then fill the header in: one copy, no concat.
        self._encoder.encode_into(msg, buf, HEADER_SIZE)
        size = len(buf) - HEADER_SIZE
        if size > self.max_payload:
            del buf[:]
            raise FrameTooLargeError(
                f"a {type(msg).__name__} event encodes to {size} bytes, over the "
                f"{self.max_payload}-byte frame limit"
            )
        _HEADER.pack_into(buf, 0, MAGIC, WIRE_VERSION, size)
        frame = bytes(buf)
        if len(buf) > 1 << 20:
            self._buf = bytearray()  # do not keep a huge scratch buffer alive
        return frame


def encode_frame(msg: msgspec.Struct, max_payload: int = DEFAULT_MAX_PAYLOAD) -> bytes:
    """One frame for an event or a control message; raises :class:`FrameTooLargeError`.

    Thread-safe; a hot path should keep its own :class:`FrameEncoder` instead.
    """
    payload = msgspec.msgpack.encode(msg, enc_hook=to_builtins_hook)
    if len(payload) > max_payload:
        raise FrameTooLargeError(
            f"a {type(msg).__name__} event encodes to {len(payload)} bytes, over the "
            f"{max_payload}-byte frame limit"
        )
    return _HEADER.pack(MAGIC, WIRE_VERSION, len(payload)) + payload


class FrameDecoder:
    """Incremental frame decoder: ``feed`` bytes as they arrive, get events and errors back.

    ``kind="event"`` decodes telemetry (:data:`nbtrain.wire.events.Event`), ``"control"``
    decodes the control pipe (:data:`nbtrain.wire.events.Control`). Counters: ``frames``
    (decoded), ``bytes`` (fed), ``errors`` (reported).
    """

    def __init__(
        self,
        kind: Literal["event", "control"] = "event",
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        if kind not in ("event", "control"):
            raise ValueError(f"decoder kind {kind!r} is not one of 'event', 'control'")
        if max_payload < 1:
            raise ValueError(f"max_payload {max_payload!r} must be >= 1")
        schema: Any = Event if kind == "event" else Control
        self.kind = kind
        self.max_payload = max_payload
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(schema)
        self._buf = bytearray()
        self._offset = 0  # stream offset of _buf[0], for error messages
        self._in_garbage = False  # one BadMagicError per run of garbage, not one per byte
        self.frames = 0
        self.bytes = 0
        self.errors = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[DecodedItem]:
        """Append ``data``; return every complete event and error, in stream order."""
        self.bytes += len(data)
        self._buf += data
        out = self._parse_valid()
        if self._buf:
            out += self._parse()
        return out

    def close(self) -> list[WireError]:
        """End of stream: a :class:`TruncatedFrameError` if a partial frame is left."""
        out: list[WireError] = []
        if self._buf:
            out.append(self._truncated())
            self._drop(len(self._buf))
        return out

    def finish(self) -> list[DecodedItem]:
        """End of stream with recovery: like :meth:`close`, but the bytes a corrupt header
        held back (by announcing more than ever came) are rescanned for valid frames."""
        out: list[DecodedItem] = []
        while self._buf:
            out.append(self._truncated())
            self._skip_to_next_magic(1)
            out.extend(self._parse())
        return out

    def _truncated(self) -> TruncatedFrameError:
        self.errors += 1
        buf = self._buf
        if len(buf) >= HEADER_SIZE and buf[:3] == MAGIC:
            length = _HEADER.unpack_from(buf, 0)[2]
            detail = f"a frame announcing {length} payload bytes has {len(buf) - HEADER_SIZE}"
        else:
            detail = f"{len(buf)} bytes of an incomplete frame header"
        return TruncatedFrameError(f"stream ended at byte {self._offset + len(buf)}: {detail}")

    def _drop(self, count: int) -> None:
        del self._buf[:count]
        self._offset += count

    def _skip_to_next_magic(self, start: int) -> None:
        """Drop bytes up to the next magic at or after ``start`` (keeping a possible partial
        magic at the end, which the next feed may complete)."""
        buf = self._buf
        found = buf.find(MAGIC, start)
        if found < 0:
            found = max(start, len(buf) - (len(MAGIC) - 1))
            while found < len(buf) and not MAGIC.startswith(bytes(buf[found:])):
                found += 1
        self._drop(found)
        # What follows a bad frame up to the next magic belongs to it: no second error.
        self._in_garbage = True

    def _error(self, error: WireError) -> WireError:
        self.errors += 1
        return error

    def _parse_valid(self) -> list[DecodedItem]:
        """Fast path: decode the complete, well-formed frames at the start of the buffer
        with one memoryview and no per-frame attribute updates; stop at the first frame
        that is incomplete or wrong in any way and leave it to :meth:`_parse`, which
        reports it. (Per-frame overhead matters: an episode is two small frames.)"""
        buf = self._buf
        size = len(buf)
        decode = self._decoder.decode
        unpack_length = _LENGTH.unpack_from
        starts = buf.startswith
        max_payload = self.max_payload
        out: list[DecodedItem] = []
        append = out.append
        pos = 0
        with memoryview(buf) as view:
            while size - pos >= HEADER_SIZE and starts(_HEADER_PREFIX, pos):
                (length,) = unpack_length(buf, pos + 4)
                end = pos + HEADER_SIZE + length
                if end > size or length > max_payload:
                    break
                try:
                    append(decode(view[pos + HEADER_SIZE : end]))
                except Exception:  # _parse decodes it again and reports the error
                    break
                pos = end
        if pos:
            self.frames += len(out)
            self._in_garbage = False
            self._drop(pos)
        return out

    def _parse(self) -> list[DecodedItem]:
        out: list[DecodedItem] = []
        buf = self._buf
        decode = self._decoder.decode
        unpack = _HEADER.unpack_from
        pos = 0  # frames decoded in this call are dropped once, at the end (no O(n^2))
        try:
            while True:
                avail = len(buf) - pos
                if avail < HEADER_SIZE:
                    if avail and not MAGIC.startswith(bytes(buf[pos : pos + 3])):
                        self._drop(pos)
                        pos = 0
                        self._bad_magic(out)
                        continue
                    return out
                magic, version, length = unpack(buf, pos)
                if magic != MAGIC or version != WIRE_VERSION or length > self.max_payload:
                    self._drop(pos)
                    pos = 0
                    self._bad_header(out, magic, version, length)
                    continue
                self._in_garbage = False
                end = pos + HEADER_SIZE + length
                if len(buf) < end:
                    return out
                try:
                    with memoryview(buf) as view:
                        event = decode(view[pos + HEADER_SIZE : end])
                except Exception as exc:  # msgspec also raises UnicodeDecodeError and others
                    self._drop(pos)
                    pos = 0
                    out.append(
                        self._error(
                            MalformedPayloadError(
                                f"frame at byte {self._offset} ({length} payload bytes) is "
                                f"not a valid {self.kind}: {exc}"
                            )
                        )
                    )
                    # The length itself may be what is corrupt: rescan inside this frame.
                    self._skip_to_next_magic(1)
                    continue
                pos = end
                self.frames += 1
                out.append(event)
        finally:
            self._drop(pos)

    def _bad_header(self, out: list[DecodedItem], magic: bytes, version: int, length: int) -> None:
        if magic != MAGIC:
            self._bad_magic(out)
            return
        if version != WIRE_VERSION:
            error: WireError = UnsupportedVersionError(
                f"frame at byte {self._offset} has wire version {version}; "
                f"this reader understands version {WIRE_VERSION} only"
            )
        else:
            error = FrameTooLargeError(
                f"frame at byte {self._offset} announces {length} payload bytes, "
                f"over the {self.max_payload}-byte limit"
            )
        out.append(self._error(error))
        self._skip_to_next_magic(1)

    def _bad_magic(self, out: list[DecodedItem]) -> None:
        if not self._in_garbage:
            shown = bytes(self._buf[:3])
            out.append(
                self._error(
                    BadMagicError(
                        f"bytes at {self._offset} start with {shown!r}, not the frame magic "
                        f"{MAGIC!r}; skipping to the next frame"
                    )
                )
            )
        self._skip_to_next_magic(1)


def decode_all(
    data: bytes | bytearray | memoryview,
    kind: Literal["event", "control"] = "event",
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> list[Any]:
    """Strictly decode a complete byte string of frames; raise the first error."""
    decoder = FrameDecoder(kind, max_payload)
    items = [*decoder.feed(data), *decoder.close()]
    for item in items:
        if isinstance(item, WireError):
            raise item
    return items


_json_encoder = msgspec.json.Encoder(enc_hook=to_builtins_hook)


def event_to_json(event: msgspec.Struct) -> bytes:
    """One JSON object (no trailing newline) for ``--jsonl``; ``bytes`` fields are base64."""
    return _json_encoder.encode(event)
