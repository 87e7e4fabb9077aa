"""VGG-n with BatchNorm for 32x32 inputs (the students), laid out as the authors' ``block0..4``."""
from mindspore import nn

from ..kernels.engine import max_pool2x2
from .layers import batch_norm, conv3x3, global_average_pool, linear

# Output channels of the convolutions in each of the five blocks.
VGG_CFGS = {
    8: [[64], [128], [256], [512], [512]],
    11: [[64], [128], [256, 256], [512, 512], [512, 512]],
    13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    19: [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


def _block(cin, channels, first=False):
    """conv(bias) + BN-ReLU per entry: parameter names block{b}.{3j}.* and block{b}.{3j+1}.*.
    ``first``: the network's first block, whose first convolution sees the images."""
    layers = []
    for j, cout in enumerate(channels):
        # The ReLU is done by the BatchNorm cell; an Identity keeps the authors' indices (3j, 3j+1).
        layers += [conv3x3(cin, cout, bias=True, input_grad=not (first and j == 0)), batch_norm(cout, relu=True),
                   nn.Identity()]
        cin = cout
    return nn.SequentialCell(layers)


class VGG(nn.Cell):
    """Max-pool after blocks 0-2 (none after block 3 at 32x32), global average pool, linear."""

    def __init__(self, n_layer=8, n_classes=100):
        super().__init__()
        cfg = VGG_CFGS[n_layer]
        self.block0 = _block(3, cfg[0], first=True)
        self.block1 = _block(cfg[0][-1], cfg[1])
        self.block2 = _block(cfg[1][-1], cfg[2])
        self.block3 = _block(cfg[2][-1], cfg[3])
        self.block4 = _block(cfg[3][-1], cfg[4])
        self.pool = max_pool2x2()
        self.classifier = linear(cfg[4][-1], n_classes)

    def construct(self, x):
        x = self.pool(self.block0(x))
        x = self.pool(self.block1(x))
        x = self.pool(self.block2(x))
        x = self.block4(self.block3(x))
        return self.classifier(global_average_pool(x))
