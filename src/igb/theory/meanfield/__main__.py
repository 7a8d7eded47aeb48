"""``python -m igb.theory.meanfield <overrides>``: the mean-field CLI
(:mod:`igb.launch.meanfield_cli`)."""

import sys

from igb.launch.meanfield_cli import main

if __name__ == "__main__":
    sys.exit(main())
