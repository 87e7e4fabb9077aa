"""After training: summaries of finished runs (``run_summary.py``), the temperature grid
(``sweep.py``), the paper's teacher statistics (``teacher_stats.py``) and the figures (``plots.py``)."""
