"""``python -m fwwatch.cli``."""

import sys

from . import main

sys.exit(main())
