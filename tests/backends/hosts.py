"""Reading which Ray actor hosts which worker, for the backend tests."""

from __future__ import annotations

import time
from typing import Any


def not_hosted(ray: Any, run_id: str, worker_id: str, timeout: float = 15.0) -> bool:
    """Has every actor stopped hosting this worker (ended, or kept warm for another)?"""
    from nbtrain.dispatch.ray_backend import find_host

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if find_host(ray, run_id, worker_id) is None:
            return True
        time.sleep(0.1)
    return False
