"""The compiled training step and the losses it can optimise."""
import mindspore as ms
from mindspore import nn, ops

from .losses import cross_entropy, kd_loss


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


class TrainStep(nn.Cell):
    """One optimisation step, compiled as one graph: forward, gradients, (all-reduce), update.

    Returns [total loss, CE part, KD part, number of correct predictions] so that the loop needs
    no second forward pass for its statistics. Extra inputs (the teacher's logits) go to the loss.
    """

    def __init__(self, net, loss_fn, optimizer, grad_reducer=None):
        # No prefix: the network's parameters keep the names its checkpoints use.
        super().__init__(auto_prefix=False)
        self.net, self.loss_fn, self.optimizer = net, loss_fn, optimizer
        self.grad_reducer = grad_reducer if grad_reducer is not None else ops.identity
        self.grad_fn = ms.value_and_grad(self.forward, None, optimizer.parameters, has_aux=True)

    def forward(self, x, labels, *extra):
        logits = self.net(x)
        loss, ce, kd = self.loss_fn(logits, labels, *extra)
        return loss, ce, kd, logits

    def construct(self, x, labels, *extra):
        (loss, ce, kd, logits), grads = self.grad_fn(x, labels, *extra)
        self.optimizer(self.grad_reducer(grads))
        correct = (logits.argmax(-1) == labels).astype(ms.float32).sum()
        return ops.stack([loss, ce, kd, correct])
