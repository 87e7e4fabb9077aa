"""The single place mapping ``--net`` + ``--n_layer`` (+ ``--width`` for WRN) to a network."""
from ..errors import UserError
from .resnet import RESNET_DEPTHS, ResNet
from .vgg import VGG, VGG_CFGS
from .wrn import WRN_DEPTHS, WideResNet

# net -> (constructor(n_layer, n_classes, width), valid depths)
MODELS = {
    "VGG": (lambda n, c, w: VGG(n, c), tuple(VGG_CFGS)),
    "ResNet": (lambda n, c, w: ResNet(n, c), RESNET_DEPTHS),
    "WRN": (lambda n, c, w: WideResNet(n, c, w), WRN_DEPTHS),
}


def valid_networks():
    return "; ".join(f"{net} with n_layer in {{{', '.join(map(str, depths))}}}"
                     for net, (_, depths) in MODELS.items())


def check_network(net, n_layer, flag="--net"):
    if net not in MODELS or n_layer not in MODELS[net][1]:
        raise UserError(f"{flag} {net} with n_layer {n_layer} is not available: expected "
                        f"{valid_networks()}")


def build_network(net, n_layer, n_classes, width=1, flag="--net"):
    check_network(net, n_layer, flag)
    if width < 1:
        raise UserError(f"width {width}: expected a positive integer")
    return MODELS[net][0](n_layer, n_classes, width)


def default_net_name(net, n_layer, width=1):
    return f"WRN{n_layer}-{width}" if net == "WRN" else f"{net}{n_layer}"
