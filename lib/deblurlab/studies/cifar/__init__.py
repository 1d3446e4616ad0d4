"""The CIFAR-10 gaussian-blur chapters (notebooks 01-04): the study, its results and analyses."""
