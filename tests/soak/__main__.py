"""``python -m tests.soak``: see ``tests.soak.runner``."""

import sys

from tests.soak.runner import main

sys.exit(main())
