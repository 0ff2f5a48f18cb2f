"""``python -m nbtrain.worker --config FILE --worker-id ID [--jsonl]``."""

from __future__ import annotations

from nbtrain.worker.entry import main

raise SystemExit(main())
