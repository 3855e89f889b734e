"""``python -m devserver`` is the ``devserver`` command."""

import sys

from .cli import main

sys.exit(main())
