"""The frozen teacher: a trained network run for inference only (its own compiled graph)."""
import mindspore as ms

from .checkpoint import load_into
from .models import build_network


class Teacher:
    """Eval-mode forward of a trained network: BatchNorm uses its moving statistics and nothing is
    updated; no gradient is ever taken through it (its logits enter the student's loss as inputs)."""

    def __init__(self, net):
        self.net = net
        self.net.set_train(False)
        for p in self.net.get_parameters():
            p.requires_grad = False

    def __call__(self, images):
        return self.net(ms.Tensor(images))


def load_teacher(net, n_layer, n_classes, width, ckpt, flag="--t_ckpt"):
    """Build the teacher network and load ``ckpt`` into it, checking every parameter name and shape."""
    model = build_network(net, n_layer, n_classes, width, flag="--t_net")
    # A *-last.ckpt training state also holds optimizer entries: the network part is what counts.
    load_into(model, ckpt, f"teacher checkpoint {flag}", extra_ok=("moments.", "global_step"))
    return Teacher(model)
