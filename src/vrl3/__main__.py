"""`python -m vrl3 ...` is `vrl3 ...` where the console script is not on PATH (e.g. a package on PYTHONPATH)."""

import sys

from vrl3.cli import main

if __name__ == "__main__":  # env worker processes (spawn) import this module under another name
    sys.exit(main())
