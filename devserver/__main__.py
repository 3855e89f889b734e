"""``python -m devserver`` is the ``devserver`` command."""

import sys

from devserver.cli import main

sys.exit(main())
