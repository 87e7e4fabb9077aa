"""The training objective, whole: the paper's KD term with Asymmetric Temperature Scaling (ATS, TS
as a special case), the ``(1 - lamb) * CE + lamb * KD`` objective, and the TS/ATS temperature choice.

The loss functions are pure functions of logits, labels and numbers, usable in PyNative and inside
compiled graphs; the loss cells hold the numbers for the compiled training step (src/training/train_step.py).
"""
from mindspore import nn, ops

KD_WAYS = ("TS", "ATS")


def teacher_taus(kd_way, tp_tau, t_tau):
    """(correct-class, wrong-class) teacher temperatures: TS uses ``t_tau`` for every class."""
    return (t_tau, t_tau) if kd_way == "TS" else (tp_tau, t_tau)


def kd_way_of(tp_tau, t_tau):
    """The inverse of ``teacher_taus``: equal temperatures are TS, others ATS."""
    return "TS" if tp_tau == t_tau else "ATS"


def teacher_temperatures(labels, n_classes, tp_tau, t_tau):
    """Per-class teacher temperature (N, C): ``tp_tau`` on each sample's correct class, ``t_tau`` elsewhere.

    Built from a one-hot mask (no index assignment), so it compiles in graph mode.
    """
    mask = ops.one_hot(labels, n_classes, 1.0, 0.0)
    return t_tau + (tp_tau - t_tau) * mask


def kd_loss(s_logits, t_logits, labels, tp_tau, t_tau, s_tau=1.0):
    """KD term with asymmetric teacher temperatures, already multiplied by ``s_tau ** 2``.

    p_t  = softmax(t_logits / tau), tau[i, c] = tp_tau if c == labels[i] else t_tau
    kd   = s_tau^2 * mean_i sum_c -p_t[i, c] * log_softmax(s_logits / s_tau)[i, c]

    This is a cross-entropy against the soft target; it differs from KL(p_t || p_s) by the teacher's
    entropy, a constant, so the gradients are the same: d kd / d s_logits =
    s_tau * (softmax(s_logits / s_tau) - p_t) / N. TS (Hinton's KD) is ``tp_tau == t_tau``.
    The teacher's logits are treated as constants (no gradient flows into them).
    """
    t_logits = ops.stop_gradient(t_logits)
    tau = teacher_temperatures(labels, t_logits.shape[-1], tp_tau, t_tau)
    p_t = ops.softmax(t_logits / tau, axis=-1)
    log_p_s = ops.log_softmax(s_logits / s_tau, axis=-1)
    return (s_tau ** 2) * (-(p_t * log_p_s).sum(axis=-1)).mean()


def cross_entropy(logits, labels):
    """Mean cross-entropy with integer labels."""
    return ops.cross_entropy(logits, labels, reduction="mean")


class ClassifyLoss(nn.Cell):
    """Plain cross-entropy; returns (total, ce, kd) like ``DistillLoss`` so one step serves both."""

    def construct(self, logits, labels):
        ce = cross_entropy(logits, labels)
        return ce, ce, ops.zeros_like(ce)


class DistillLoss(nn.Cell):
    """``(1 - lamb) * CE(student, labels) + lamb * kd_loss(student, teacher, labels, tp_tau, t_tau, s_tau)``."""

    def __init__(self, lamb, tp_tau, t_tau, s_tau):
        super().__init__()
        self.lamb, self.tp_tau, self.t_tau, self.s_tau = lamb, tp_tau, t_tau, s_tau

    def construct(self, logits, labels, t_logits):
        ce = cross_entropy(logits, labels)
        kd = kd_loss(logits, t_logits, labels, self.tp_tau, self.t_tau, self.s_tau)
        return (1.0 - self.lamb) * ce + self.lamb * kd, ce, kd
