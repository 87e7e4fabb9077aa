"""The feature-map sides of the networks' layers on 32x32 inputs, and the distinct convolution and
BatchNorm shapes they give: what the kernel tests check and what the benchmarks count FLOPs over."""
import functools

# Side of the (square) feature maps a layer writes on 32x32 inputs, by the first part of its name
# (a stage's first, strided, block reads maps twice that side).
FEATURE_SIDES = {
    "VGG": {"block0": 32, "block1": 16, "block2": 8, "block3": 4, "block4": 4},
    "ResNet": {"conv1": 32, "bn1": 32, "layer1": 32, "layer2": 16, "layer3": 8},
    "WRN": {"conv1": 32, "block1": 32, "block2": 16, "block3": 8, "bn1": 8},
}

# VGG19 holds every VGG shape, ResNet8 every ResNet one; WRN at widths 1 and 8 (WRN28-1, WRN28-8).
COVERING_NETWORKS = (("VGG", 19, 1), ("ResNet", 8, 1), ("WRN", 16, 1), ("WRN", 16, 8))


def feature_side(net, cell_name):
    """Side of the feature maps that the layer ``cell_name`` of a ``net`` network writes."""
    return FEATURE_SIDES[net][cell_name.split(".")[0]]


def _mindspore_network(net, n_layer, width):
    from src.kernels.engine import mindspore_layers
    from src.nets.models import build_network
    with mindspore_layers():
        return build_network(net, n_layer, 10, width)


def network_convolutions(net, n_layer, width=1):
    """Distinct (layer spec, input shape) of a network's convolutions, as kernels.check.compare takes
    them: (cin, cout, kernel, stride, padding, bias, input_grad), input (2, cin, side, side)."""
    from mindspore import nn
    found = {}
    for name, cell in _mindspore_network(net, n_layer, width).cells_and_names():
        if isinstance(cell, nn.Conv2d):
            stride = cell.stride[0]
            padding = 0 if cell.pad_mode == "valid" else cell.padding
            first = cell.in_channels == 3
            spec = (cell.in_channels, cell.out_channels, cell.kernel_size[0], stride, padding,
                    cell.has_bias, not first)
            found[spec] = (2, cell.in_channels, feature_side(net, name) * stride, feature_side(net, name) * stride)
    return found


def network_batchnorms(net, n_layer, width=1):
    """Distinct [2, C, side, side] inputs of a network's BatchNorm layers."""
    from mindspore import nn
    return {(2, cell.num_features, feature_side(net, name), feature_side(net, name))
            for name, cell in _mindspore_network(net, n_layer, width).cells_and_names()
            if isinstance(cell, nn.BatchNorm2d)}


@functools.lru_cache(maxsize=None)
def every_convolution():
    """{layer spec: input shape} over ``COVERING_NETWORKS``: every convolution shape of the networks."""
    layers = {}
    for net in COVERING_NETWORKS:
        layers.update(network_convolutions(*net))
    return layers


@functools.lru_cache(maxsize=None)
def every_batchnorm():
    """Every BatchNorm input shape of ``COVERING_NETWORKS``."""
    return frozenset().union(*(network_batchnorms(*net) for net in COVERING_NETWORKS))
