"""``python -m nbtrain``: the ``nbtrain`` command."""

import sys

from nbtrain.cli import main

sys.exit(main())
