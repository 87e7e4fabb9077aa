"""Every registered network: output shape, and parameter count against an independent formula."""
import numpy as np
import pytest

from src.errors import UserError
from src.nets.models import MODELS, build_network, check_network
from src.nets.vgg import VGG_CFGS


def conv(cin, cout, k=3, bias=False):
    return cin * cout * k * k + (cout if bias else 0)


def vgg_count(n_layer, classes):
    total, cin = 0, 3
    for block in VGG_CFGS[n_layer]:
        for cout in block:
            total += conv(cin, cout, bias=True) + 2 * cout
            cin = cout
    return total + 512 * classes + classes


def resnet_count(n_layer, classes):
    k = (n_layer - 2) // 6
    total, cin = conv(3, 16) + 32, 16
    for cout in (16, 32, 64):
        for i in range(k):
            total += conv(cin, cout) + 2 * cout + conv(cout, cout) + 2 * cout
            if cin != cout:
                total += conv(cin, cout, k=1) + 2 * cout
            cin = cout
    return total + 64 * classes + classes


def wrn_count(n_layer, width, classes):
    k = (n_layer - 4) // 6
    total, cin = conv(3, 16), 16
    for cout in (16 * width, 32 * width, 64 * width):
        for i in range(k):
            total += 2 * cin + conv(cin, cout) + 2 * cout + conv(cout, cout)
            if cin != cout:
                total += conv(cin, cout, k=1)
            cin = cout
    return total + 2 * cin + cin * classes + classes


def count(net):
    return sum(int(np.prod(p.shape)) for p in net.trainable_params())


def test_reference_parameter_counts():
    # The CIFAR variants' published sizes: VGG8 about 3.96 M, ResNet14 about 0.18 M, ResNet110 about 1.7 M.
    assert count(build_network("VGG", 8, 100)) == 3_965_028
    assert count(build_network("ResNet", 14, 100)) == 181_108
    assert count(build_network("ResNet", 110, 100)) == 1_736_564
    assert count(build_network("WRN", 28, 100, width=1)) == 375_348


@pytest.mark.parametrize("net,n_layer,width", [(net, n, 1) for net, (_, depths) in MODELS.items()
                                                for n in depths] + [("WRN", 16, 2)])
def test_every_network_shape_and_count(net, n_layer, width):
    import mindspore as ms
    classes = 10
    model = build_network(net, n_layer, classes, width)
    expected = {"VGG": lambda: vgg_count(n_layer, classes),
                "ResNet": lambda: resnet_count(n_layer, classes),
                "WRN": lambda: wrn_count(n_layer, width, classes)}[net]()
    assert count(model) == expected
    model.set_train(False)
    out = model(ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)))
    assert out.shape == (2, classes)
    assert np.isfinite(out.asnumpy()).all()


def test_batchnorm_statistics_are_parameters_not_trainable():
    net = build_network("ResNet", 8, 10)
    names = {p.name for p in net.get_parameters()} - {p.name for p in net.trainable_params()}
    assert names and all(n.endswith(("moving_mean", "moving_variance")) for n in names)


@pytest.mark.parametrize("net,n_layer", [("VGG", 9), ("ResNet", 15), ("Transformer", 8)])
def test_unknown_network_lists_valid_ones(net, n_layer):
    with pytest.raises(UserError, match=r"ResNet with n_layer in \{8, 14, 20, 32, 44, 56, 110\}"):
        check_network(net, n_layer)
