"""deblurlab: a reproducible study of encoder-decoder networks for image deblurring."""

import os

# TensorFlow's C++ start-up lines say nothing a reader needs; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
