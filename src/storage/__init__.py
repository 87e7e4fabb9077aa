"""What the package keeps on disk and how: files written whole or not at all (``files.py``), OS file
locks (``file_lock.py``), strict checkpoints (``checkpoint.py``), the names of a run's files
(``run_files.py``) and paths shown the way the user typed them (``user_paths.py``)."""
