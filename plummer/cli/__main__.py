"""``python -m plummer.cli``: the ``plummer`` console script."""

import sys

from plummer.cli import main

if __name__ == "__main__":
    sys.exit(main())
