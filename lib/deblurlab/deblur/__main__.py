"""``python -m deblurlab.deblur``: see ``deblurlab.deblur.cli``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
