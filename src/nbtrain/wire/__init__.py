"""Versioned, framed, batched telemetry between workers and the kernel (see docs/wire.md)."""
