"""``python -m plummer.cli``: the ``plummer`` console script."""

from __future__ import annotations

from plummer.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
