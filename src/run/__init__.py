"""A run's plumbing, between the entry points and the training: the flags (``cli.py``), the resolved
configuration (``config.py``), the set-up before training (``setup.py``), the run's log, metrics and
record (``log.py``), its hold on its outputs (``output_guard.py``) and data parallelism under msrun
(``parallel.py``)."""
