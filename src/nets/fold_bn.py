"""Folding a frozen network's BatchNorm layers into the convolutions that feed them (inference only).

In eval mode BatchNorm is an affine map per channel, ``y = (x - mean) * g + beta`` with
``g = gamma / sqrt(var + eps)``. When a convolution's output goes only into that BatchNorm, the two
are one convolution with weight ``w * g`` and bias ``(b - mean) * g + beta``: one pass over the
activations less per folded layer. The folded network computes the same logits up to float32
rounding (relative difference about 1e-6) and can no longer be trained.
"""
import mindspore as ms
import numpy as np
from mindspore import nn

from ..kernels.engine import conv2d
from ..kernels.layers import ShortcutReLU
from .resnet import BasicBlock, ResNet
from .wrn import PreActBlock

# (conv, bn) attribute pairs per cell type where the conv's output feeds that BatchNorm and nothing
# else. A Conv2d directly followed by a BatchNorm2d inside a SequentialCell (VGG blocks, ResNet
# shortcuts) is such a pair too. WRN's other BatchNorms follow a residual sum and feed a ReLU: they
# stay as they are.
CONV_BN_PAIRS = {
    ResNet: (("conv1", "bn1"),),
    BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
    PreActBlock: (("conv1", "bn2"),),
}


def folded_conv(conv, bn):
    """A biased Conv2d equal to ``bn(conv(x))`` with ``bn`` in eval mode (computed in float64), run
    by the active convolution engine."""
    gamma, beta, mean, var = (p.asnumpy().astype(np.float64)
                              for p in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
    scale = gamma / np.sqrt(var + bn.eps)
    weight = conv.weight.asnumpy().astype(np.float64) * scale[:, None, None, None]
    bias = conv.bias.asnumpy().astype(np.float64) if conv.has_bias else 0.0
    bias = (bias - mean) * scale + beta
    return conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                  pad_mode=conv.pad_mode, padding=conv.padding, dilation=conv.dilation,
                  group=conv.group, has_bias=True, data_format=conv.data_format,
                  weight_init=ms.Tensor(weight.astype(np.float32)),
                  bias_init=ms.Tensor(bias.astype(np.float32)))


def what_remains(bn):
    """What replaces a folded BatchNorm cell (layers.batch_norm): its shortcut sum and ReLU, if any."""
    return ShortcutReLU(getattr(bn, "relu", False))


def _fold_sequence(seq):
    cells = list(seq.cell_list)
    folded = 0
    for i in range(len(cells) - 1):
        if isinstance(cells[i], nn.Conv2d) and isinstance(cells[i + 1], nn.BatchNorm2d):
            seq[i] = folded_conv(cells[i], cells[i + 1])
            seq[i + 1] = what_remains(cells[i + 1])
            folded += 1
    return folded


def fold_batchnorm(net):
    """Fold every foldable BatchNorm of ``net`` into its convolution, in place; returns the count.

    ``net`` becomes an inference-only network (eval mode, no trainable parameters): the folded
    BatchNorms are identities (or their ReLU) and their convolutions carry a bias. Parameter names stay unique
    (the graph compiler requires it) and follow the cell paths.
    """
    folded = 0
    for _, cell in list(net.cells_and_names()):
        if isinstance(cell, nn.SequentialCell):
            folded += _fold_sequence(cell)
        for conv_name, bn_name in CONV_BN_PAIRS.get(type(cell), ()):
            setattr(cell, conv_name, folded_conv(getattr(cell, conv_name), getattr(cell, bn_name)))
            setattr(cell, bn_name, what_remains(getattr(cell, bn_name)))
            folded += 1
    for name, param in net.parameters_and_names():
        param.name = name
        param.requires_grad = False
    net.set_train(False)
    return folded
