"""CIFAR ResNet-n, n = 6k + 2 (the teachers), with the authors' names (layer{1,2,3}.{i}.*, fc)."""
from mindspore import nn

from .layers import batch_norm, conv1x1, conv3x3, global_average_pool, linear

RESNET_DEPTHS = (8, 14, 20, 32, 44, 56, 110)


class BasicBlock(nn.Cell):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = batch_norm(cout, relu=True)
        self.conv2 = conv3x3(cout, cout)
        # relu(bn2(conv2(...)) + shortcut): bn2 is given the shortcut, the package's kernel fuses all three.
        self.bn2 = batch_norm(cout, relu=True)
        # A 1x1 conv + BN shortcut only where the shape changes (names downsample.0 / downsample.1).
        self.downsample = (nn.SequentialCell([conv1x1(cin, cout, stride), batch_norm(cout)])
                           if stride != 1 or cin != cout else None)

    def construct(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.bn2(self.conv2(self.bn1(self.conv1(x))), shortcut)


class ResNet(nn.Cell):
    def __init__(self, n_layer=14, n_classes=100):
        super().__init__()
        k = (n_layer - 2) // 6
        self.conv1 = conv3x3(3, 16, input_grad=False)
        self.bn1 = batch_norm(16, relu=True)
        self.layer1 = self._stage(16, 16, k, 1)
        self.layer2 = self._stage(16, 32, k, 2)
        self.layer3 = self._stage(32, 64, k, 2)
        self.fc = linear(64, n_classes)

    @staticmethod
    def _stage(cin, cout, blocks, stride):
        return nn.SequentialCell([BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                                  for i in range(blocks)])

    def construct(self, x):
        x = self.bn1(self.conv1(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(global_average_pool(x))
