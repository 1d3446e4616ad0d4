"""Layer 2, where and how networks run: the compute set-up (device, precision, XLA), the cluster
of workers and what they do together, and the provenance stamp that records both."""
