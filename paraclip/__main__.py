"""``python -m paraclip`` runs the ``paraclip`` console script."""

import sys

from paraclip.cli import main

if __name__ == "__main__":
    sys.exit(main())
