"""``python -m devstack``: the whole system on this machine (``make run``); see ``devstack.stack``."""

import sys

from devstack.stack import main

sys.exit(main())
