"""Reading the test's end of a real pipe."""

from __future__ import annotations

import os


def read_available(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)


def read_n(fd: int, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        out += os.read(fd, n - len(out))
    return bytes(out)
