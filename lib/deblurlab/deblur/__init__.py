"""Layer 5, the deblurring tool: ``python -m deblurlab.deblur`` (``cli``), the networks it runs
(``networks``) and their ONNX export (``export``, the work of ``python -m deblurlab.export``)."""
