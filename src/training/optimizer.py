"""The optimiser of both trainers: SGD with momentum and weight decay, on a per-step learning rate."""
import mindspore as ms
from mindspore import nn


def build_optimizer(params, lr_schedule, momentum, weight_decay):
    """``nn.Momentum`` over ``params``; step ``i`` uses ``lr_schedule[i]`` (schedules.py).

    One parameter group: weight decay then applies to every parameter, BN's gamma/beta included, as
    in the authors' PyTorch code (MindSpore's ungrouped default exempts gamma/beta).
    """
    return nn.Momentum([{"params": params, "weight_decay": weight_decay}],
                       learning_rate=ms.Tensor(lr_schedule), momentum=momentum)
