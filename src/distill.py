"""``Distill``: the ``Classify`` loop with a frozen teacher and the TS/ATS distillation loss."""
from .classify import RESUME_KEYS, Classify
from .train_step import DistillLoss

KD_WAYS = ("TS", "ATS")
KD_RESUME_KEYS = ("t_net", "t_n_layer", "t_width", "t_input_norm", "kd_way", "tp_tau", "t_tau", "s_tau",
                  "lamb")


def teacher_taus(kd_way, tp_tau, t_tau):
    """(correct-class, wrong-class) teacher temperatures: TS uses ``t_tau`` for every class."""
    return (t_tau, t_tau) if kd_way == "TS" else (tp_tau, t_tau)


class Distill(Classify):
    """Trains the student on ``(1 - lamb) * CE + lamb * kd_loss`` against ``teacher``'s logits.

    The teacher runs once per step, in its own inference graph, on the same augmented batch as the
    student; the student runs once per step, inside the compiled training step.
    """

    def __init__(self, net, teacher, train_loader, test_loader, args, outputs, run_log, dist=None):
        self.teacher = teacher
        super().__init__(net, train_loader, test_loader, args, outputs, run_log, dist)

    def make_loss(self):
        tp, t = teacher_taus(self.args.kd_way, self.args.tp_tau, self.args.t_tau)
        return DistillLoss(self.args.lamb, tp, t, self.args.s_tau)

    def extra_inputs(self, images):
        return (self.teacher(images),)

    def resume_keys(self):
        return RESUME_KEYS + KD_RESUME_KEYS
