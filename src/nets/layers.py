"""Layer constructors with the authors' initialisation (Kaiming normal fan_out/ReLU convs, BN 1/0).

Convolutions run on the engine chosen for the process (src/kernels/engine.py). ``input_grad=False`` marks
a network's first convolution, whose input (the images) needs no gradient.
"""
from mindspore import nn
from mindspore.common.initializer import HeNormal

from ..kernels.engine import batch_norm2d, conv2d


def conv3x3(cin, cout, stride=1, bias=False, input_grad=True):
    return conv2d(cin, cout, 3, stride=stride, pad_mode="pad", padding=1, has_bias=bias,
                  weight_init=HeNormal(mode="fan_out", nonlinearity="relu"), bias_init="zeros",
                  input_grad=input_grad)


def conv1x1(cin, cout, stride=1):
    return conv2d(cin, cout, 1, stride=stride, pad_mode="valid", has_bias=False,
                  weight_init=HeNormal(mode="fan_out", nonlinearity="relu"))


def batch_norm(channels, relu=False):
    """BatchNorm, followed by a ReLU if ``relu`` (one cell: the package's kernel fuses the two); the
    cell takes an optional shortcut, added before the ReLU (a residual block's end, fused too)."""
    # MindSpore's momentum weighs the old statistic: 0.9 here is PyTorch's momentum=0.1.
    return batch_norm2d(channels, relu=relu, eps=1e-5, momentum=0.9, gamma_init="ones", beta_init="zeros")


def global_average_pool(x):
    """The mean over H and W, [N, C] in channel order, of a plain [N, C, H, W] activation or a blocked
    [N, C/B, H, W, B] one (the package's kernels', src/kernels/layers.py)."""
    return x.mean(axis=(2, 3)).reshape(x.shape[0], -1)


def linear(cin, cout):
    return nn.Dense(cin, cout, weight_init=HeNormal(), bias_init="zeros")
