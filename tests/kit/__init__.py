"""Helpers shared by the tests: import them as ``from tests.kit.<module> import ...``.

Fixtures stay in ``conftest.py`` files; everything a test imports lives here.

- ``events``: real wire events built for tests (steps, episodes, progress)
- ``runs``: runs written with plain ``sqlite3`` into a real store, and counts read back
- ``kernel``: a child "kernel" process that launches a run, and plain-sqlite checks
- ``processes``: waiting for conditions and for processes to be gone
- ``pipes``: reading the test's end of a real pipe
- ``worker``: running ``python -m nbtrain.worker`` with a written config file
- ``wire_strategies``: Hypothesis strategies for wire events
- ``backends``: the configs the pipeline tests run on every backend
"""
