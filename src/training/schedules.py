"""Per-step learning-rate schedules, returned as one value per optimisation step of the whole run."""
import numpy as np

SCHEDULERS = ("step", "poly")


def warmup_step(lr, epochs, steps_per_epoch, warmup_epochs=5, milestones=(150, 180, 210), gamma=0.1):
    """The paper's schedule: linear warm-up, then x``gamma`` at each milestone.

    Milestones are given for 240 epochs and scaled to ``epochs`` (a 24-epoch run decays at 15/18/21);
    the warm-up is capped at a tenth of the run so short runs still reach the base rate.
    """
    total = epochs * steps_per_epoch
    step = np.arange(total, dtype=np.float64)
    epoch = step / steps_per_epoch                                     # fractional epoch
    warm = min(warmup_epochs, epochs / 10) * steps_per_epoch
    # Phase 1: warm-up from lr / steps to lr.
    rates = lr * np.minimum(1.0, (step + 1) / warm) if warm >= 1 else np.full(total, lr)
    # Phase 2: step decay at the (scaled) milestones.
    for m in milestones:
        rates = np.where(epoch >= m * epochs / 240, rates * gamma, rates)
    return rates.astype(np.float32)


def warmup_poly(lr, epochs, steps_per_epoch, warmup_epochs=3, start_lr=0.001, power=2.0):
    """The MindSpore port's schedule: linear warm-up start_lr -> lr, then polynomial decay to 0."""
    total = epochs * steps_per_epoch
    warm = min(warmup_epochs * steps_per_epoch, total // 2)
    step = np.arange(total, dtype=np.float64)
    # Phase 1: linear warm-up.
    up = start_lr + (lr - start_lr) * step / max(warm, 1)
    # Phase 2: (1 - progress)^power decay over the remaining steps.
    progress = (step - warm) / max(total - warm, 1)
    down = lr * (1.0 - progress) ** power
    return np.where(step < warm, up, down).astype(np.float32)


def build_schedule(name, lr, epochs, steps_per_epoch):
    return {"step": warmup_step, "poly": warmup_poly}[name](lr, epochs, steps_per_epoch)
