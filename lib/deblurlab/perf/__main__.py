"""``python -m deblurlab.perf``: see ``deblurlab.perf.cli``."""

from .cli import main

if __name__ == "__main__":
    main()
