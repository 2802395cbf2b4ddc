"""``python -m bot.staff``: the staff command line (see bot.staff.cli)."""

import sys

from bot.staff.cli import main

sys.exit(main())
