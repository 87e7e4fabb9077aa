"""``Distill``: the ``Classify`` loop with a frozen teacher and the TS/ATS distillation loss."""
import mindspore as ms

from ..losses import DistillLoss, teacher_taus
from .classify import RESUME_KEYS, Classify

KD_RESUME_KEYS = ("t_net", "t_n_layer", "t_width", "t_input_norm", "kd_way", "tp_tau", "t_tau", "s_tau",
                  "lamb")


class Distill(Classify):
    """Trains the student on ``(1 - lamb) * CE + lamb * kd_loss`` against ``teacher``'s logits.

    The teacher runs once per step, in its own inference graph, on the same augmented batch as the
    student; the student runs once per step, inside the compiled training step. With ``cache`` (a
    CachedTeacher of the training images, src/teacher/cache.py) the teacher runs only for the batch's views
    the cache does not hold yet, and each epoch's record says what fraction it served.
    """

    def __init__(self, net, teacher, train_loader, test_loader, args, outputs, run_log, dist=None,
                 cache=None):
        self.teacher, self.cache = teacher, cache
        super().__init__(net, train_loader, test_loader, args, outputs, run_log, dist)

    def make_loss(self):
        tp, t = teacher_taus(self.args.kd_way, self.args.tp_tau, self.args.t_tau)
        return DistillLoss(self.args.lamb, tp, t, self.args.s_tau)

    def extra_inputs(self, images, views):
        logits = self.teacher(images) if self.cache is None else self.cache(images, views)
        return (ms.Tensor(logits),)

    def train_epoch(self, epoch):
        if self.cache is None:
            return super().train_epoch(epoch)
        self.cache.take_counts()
        record = super().train_epoch(epoch)
        served, seen = self.cache.take_counts()
        if self.dist:
            served, seen = self.dist.all_sum([served, seen])
        record["teacher_cache_served"] = served / seen
        return record

    def resume_keys(self):
        return RESUME_KEYS + KD_RESUME_KEYS
