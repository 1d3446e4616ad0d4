"""Layer 4, networks trained and run: the training loop and its checkpoints, losses, the profiles,
the zoo of shipped weights, whole-frame inference, ONNX conversion and the backend check."""
