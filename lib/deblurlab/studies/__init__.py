"""Layer 7, the chapters' studies: CIFAR-10 gaussian blur, motion blur and the comparison."""
