"""``python -m bncourse`` runs the command line (see :mod:`bncourse.cli`)."""

import sys

from bncourse.cli import main

sys.exit(main())
