"""Structured logging: codes, identifiers, and silence unless the user configures logging."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from nbtrain import log_codes
from nbtrain.logs import log


def test_records_carry_code_and_ids(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nbtrain")
    log(
        logging.INFO,
        log_codes.LOG_WORKER_STARTED,
        "worker started, pid %d",
        42,
        run_id="R",
        worker_id="000007",
    )
    (record,) = caplog.records
    assert record.code == "LOG_WORKER_STARTED"  # type: ignore[attr-defined]
    assert (record.run_id, record.worker_id) == ("R", "000007")  # type: ignore[attr-defined]
    assert record.getMessage() == "[LOG_WORKER_STARTED] worker started, pid 42"


def test_unknown_code_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown log code 'LOG_NOPE'"):
        log(logging.INFO, "LOG_NOPE", "x")


def test_design_codes_exist() -> None:
    for code in ("LOG_WORKER_CONFIG_DURABLE_PATH", "LOG_SERVICE_SQLITE_DESERIALIZATION_FAILED"):
        assert getattr(log_codes, code) == code
        assert code in log_codes.ALL_CODES


def test_warnings_stay_silent_without_configured_logging() -> None:
    """Regression: WARNINGs reached stderr via logging's last resort and broke nbval cells."""
    code = (
        "import logging; from nbtrain.logs import log; "
        "log(logging.WARNING, 'LOG_SERVICE_SQLITE_BUSY_RETRY', 'busy')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr == ""
