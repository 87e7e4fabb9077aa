"""The distillation loss of the paper: Asymmetric Temperature Scaling (ATS), with TS as a special case.

Pure functions of logits, labels and numbers, usable in PyNative and inside compiled graphs.
"""
from mindspore import ops


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
