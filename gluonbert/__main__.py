"""``python -m gluonbert``: see ``gluonbert.cli``."""
import sys

from .cli import main

sys.exit(main())
