"""Ask a fresh interpreter, started the way workers are, whether it can find something.

Workers are new processes: what a notebook made importable only in its kernel
(``sys.path.insert(...)``, a class registered in a cell) does not exist there. Validation
asks once, in an interpreter with the same executable, environment and working directory,
and remembers the answer for that place (re-validating a config on every form edit costs
nothing).
"""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["ask_fresh_interpreter"]

FOUND = 0
# Exit status 4: the script printed what failed (an exception's last line) on stderr.
FAILED_WITH_MESSAGE = 4

_answers: dict[tuple[str, str, str, str, str], str | None] = {}


def ask_fresh_interpreter(script: str, arg: str, *, not_found: str) -> str | None:
    """None if ``script`` (run as ``python -c script arg``) exits 0; else what went wrong:
    the last line it printed on stderr when it exits 4, else ``not_found``."""
    key = (script, arg, os.getcwd(), os.environ.get("PYTHONPATH", ""), sys.executable)
    if key not in _answers:
        _answers[key] = _ask(script, arg, not_found)
    return _answers[key]


def _ask(script: str, arg: str, not_found: str) -> str | None:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script, arg],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not start a Python interpreter to check it: {exc}"
    if proc.returncode == FOUND:
        return None
    if proc.returncode == FAILED_WITH_MESSAGE:
        lines = proc.stderr.strip().splitlines()
        return f"a fresh interpreter fails: {lines[-1] if lines else 'import error'}"
    return not_found
