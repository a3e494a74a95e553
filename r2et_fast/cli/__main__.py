"""``python -m r2et_fast.cli``: the same as the ``r2et-fast`` command."""

import sys

from r2et_fast.cli import main

sys.exit(main())
