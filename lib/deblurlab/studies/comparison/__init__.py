"""The comparison chapter (notebook 06): classical baselines beside every trained CIFAR model."""
