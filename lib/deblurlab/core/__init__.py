"""Layer 1, the foundations: paths, this machine's CPU and backend, metrics, statistics, tables
and results on disk. Imports nothing else of deblurlab."""
