"""Layer 3, the data: CIFAR-10 and its gaussian blur, motion-blur frames and patches, streams."""
