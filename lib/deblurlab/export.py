"""Export a model as ONNX, checked against Keras on real images: ``python -m deblurlab.export``
(the command; the work, and ``--help``'s text, are in ``deblurlab.deblur.export``)."""

from .deblur.export import main

if __name__ == "__main__":
    raise SystemExit(main())
