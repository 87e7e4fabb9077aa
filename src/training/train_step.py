"""The compiled training step: forward, loss (a cell of src/losses.py), gradients, update."""
import mindspore as ms
from mindspore import nn, ops

# What the step returns, in order: the batch's mean losses and its count of correct predictions.
STEP_OUTPUTS = ("loss", "ce", "kd", "correct")


class TrainStep(nn.Cell):
    """One optimisation step, compiled as one graph: forward, gradients, (all-reduce), update.

    Returns ``STEP_OUTPUTS`` (total loss, CE part, KD part, number of correct predictions) stacked,
    so that the loop needs no second forward pass for its statistics. Extra inputs (the teacher's
    logits) go to the loss.
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
