import sys

from nbtrain.cli import main

sys.exit(main())
