"""The first ``launch()`` of a kernel imports only what launching needs.

pandas and pyarrow (~0.3 s) are for reading runs back; they used to come in with the store
package's writer, which made the first ``launch()`` of a notebook take 0.26-0.45 s against
the 0.2 s goal of issue 13. A fresh interpreter that cannot import them must launch a
run, wait for it and store every episode.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.kit.kernel import rows

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("pandas", "pyarrow"):
                raise ImportError(f"launching imported {name}")
            return None

    sys.meta_path.insert(0, Refuse())
    import nbtrain

    config = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=30, workers=2, seed=1)
    run = nbtrain.launch(config, db=sys.argv[1])
    print(run.wait(timeout=120))
    print(sorted(m for m in ("pandas", "pyarrow") if m in sys.modules))
    """
)


def test_launch_and_wait_need_neither_pandas_nor_pyarrow(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(db)], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    statuses, heavy = done.stdout.strip().splitlines()
    assert statuses == "{'000001': 'completed', '000002': 'completed'}"
    assert heavy == "[]"
    assert rows(db, "SELECT COUNT(*) FROM episodes") == [(60,)]


def test_the_refusal_works(tmp_path: Path) -> None:
    # the check above would pass vacuously if the refusing finder did nothing
    script = SCRIPT.replace("import nbtrain\n", "import nbtrain\nimport pandas\n", 1)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "x.sqlite")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode != 0
    assert "launching imported pandas" in done.stderr
