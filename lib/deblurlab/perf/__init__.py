"""The benchmark: ``python -m deblurlab.perf`` (``make bench``).

Modules, bottom to top:

- ``clock``: timed windows and this process's memory and CPU counters;
- ``machine``: CPU flags, the backend and device, matmul and bandwidth peaks;
- ``flops``: the one analytic FLOP and memory-traffic count (the benchmark, the comparison
  chapter's cost table and the findings use it);
- ``timing``: timed windows, one model's training and inference speed, chapter speed helpers;
- ``pipelines``: the data pipelines timed alone;
- ``bounds``: derived columns, the "bound" heuristics and the speed targets;
- ``tuning``: the ``--tune`` pass behind ``deblurlab.runtime.compute``;
- ``records`` and ``tables``: reading records and writing the report's tables (neither imports
  Keras nor TensorFlow);
- ``plans``: each model's input size and batch, and the run's time allowances;
- ``engines``: the ``--engines`` pass, whole-frame seconds through Keras (TensorFlow, JAX) and
  onnxruntime side by side;
- ``child``: one model's run in a fresh process; ``cli``: the command line;
- ``scaling``: images/s with 1 and several workers (``python -m deblurlab.perf.scaling``).

Importing this package imports nothing heavy.
"""
