"""``python -m nbtrain.worker --config FILE --worker-id ID [--jsonl]``."""

from __future__ import annotations

import os

# One BLAS thread per worker unless the user chose otherwise (as Ray does for its workers):
# a run has a process per worker already, and OpenBLAS's thread pool, made when numpy is
# imported, spun for 0.1-0.2 s of CPU at every worker start (2 cores). Set before the
# import below, which is the first to import numpy (through gymnasium).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from nbtrain.worker.entry import main

raise SystemExit(main())
