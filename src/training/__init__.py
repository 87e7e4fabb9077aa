"""Training: the one epoch loop (``classify.py``) and its distillation variant (``distill.py``), the
compiled step (``train_step.py``), the optimiser (``optimizer.py``), the learning-rate schedules
(``schedules.py``) and accuracy over a split (``evaluate.py``). The objective itself is ``src/losses.py``."""
