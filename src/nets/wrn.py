"""Wide ResNet WRN-d-w (depth d = 6k + 4), pre-activation blocks, the authors' names (block{s}.layer.{i})."""
from mindspore import nn

from .layers import batch_norm, conv1x1, conv3x3, global_average_pool, linear

WRN_DEPTHS = (16, 22, 28, 40)


class PreActBlock(nn.Cell):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = batch_norm(cin, relu=True)
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn2 = batch_norm(cout, relu=True)
        self.conv2 = conv3x3(cout, cout)
        self.equal_in_out = cin == cout
        # Where channels change, the shortcut 1x1 conv sees the pre-activated input relu(bn1(x)).
        self.convShortcut = None if self.equal_in_out else conv1x1(cin, cout, stride)

    def construct(self, x):
        act = self.bn1(x)
        out = self.conv2(self.bn2(self.conv1(act)))
        shortcut = x if self.equal_in_out else self.convShortcut(act)
        return out + shortcut


class Stage(nn.Cell):
    def __init__(self, cin, cout, blocks, stride):
        super().__init__()
        self.layer = nn.SequentialCell([PreActBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                                        for i in range(blocks)])

    def construct(self, x):
        return self.layer(x)


class WideResNet(nn.Cell):
    def __init__(self, n_layer=28, n_classes=100, width=1):
        super().__init__()
        k = (n_layer - 4) // 6
        ch = [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = conv3x3(3, ch[0], input_grad=False)
        self.block1 = Stage(ch[0], ch[1], k, 1)
        self.block2 = Stage(ch[1], ch[2], k, 2)
        self.block3 = Stage(ch[2], ch[3], k, 2)
        self.bn1 = batch_norm(ch[3], relu=True)
        self.fc = linear(ch[3], n_classes)

    def construct(self, x):
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(global_average_pool(self.bn1(x)))
