"""``python -m igb.theory.nngp <overrides>``: the theory CLI (:mod:`igb.launch.theory_cli`)."""

import sys

from igb.launch.theory_cli import main

if __name__ == "__main__":
    sys.exit(main())
