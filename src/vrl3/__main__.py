"""`python -m vrl3 ...` is `vrl3 ...` where the console script is not on PATH (e.g. a package on PYTHONPATH)."""

import sys

from vrl3.cli import main

sys.exit(main())
