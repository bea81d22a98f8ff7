"""``python -m minnorm.cli``: the ``minnorm`` command."""

import sys

from . import main

sys.exit(main())
