"""The package's CPU kernels checked against MindSpore's layers: the oneDNN convolution against
``nn.Conv2d`` (forward, input gradient, weight and bias gradients), BatchNorm (+ shortcut, + ReLU)
against ``nn.BatchNorm2d`` (output, gradients, moving statistics; then inference mode), max-pooling
against ``nn.MaxPool2d`` (exactly).

    python -m src.kernels.check LIBRARY       (from the repository root) prints one JSON line

build.py runs this in a fresh process before a built library is used: the check must run the
kernels with oneDNN's processor features free (``nn.Conv2d`` then runs oneDNN's reference kernel,
slow but exact, which is fine at these sizes). The tests call ``compare`` and ``compare_batchnorm``
for every convolution and BatchNorm shape of the networks.
"""
import ctypes
import json
import sys

import mindspore as ms
import numpy as np
from mindspore import nn

from .build import onednn_library
from .layers import BatchNormReLU, KernelBatchNorm2d, KernelConv2d, KernelMaxPool2d
from .loader import PLUGIN_ENV, attach

TOLERANCE = 1e-5   # max |ours - nn.Conv2d| / max |nn.Conv2d|, for the output and every gradient
# Layers as (in channels, out channels, kernel, stride, padding, bias, input_grad): an RGB first
# layer without input gradient, strided 3x3 and 1x1 convolutions, channel counts that are not a
# multiple of the SIMD width, an odd side. Run together in one graph, as in a network.
CHECK_LAYERS = [(3, 16, 3, 1, 1, True, False), (16, 32, 3, 2, 1, False, True),
                (32, 32, 1, 2, 0, False, True), (32, 7, 3, 1, 1, True, True)]
CHECK_INPUT = (3, 3, 9, 9)
CHECK_BATCHNORM = (3, 20, 5, 7)    # [N, C, H, W]: C not a multiple of the pool's threads
# (relu, shortcut) of the BatchNorm cells: plain, with its ReLU, a residual block's end.
BATCHNORM_KINDS = ((False, False), (True, False), (True, True))
CHECK_MAXPOOL = (3, 5, 6, 7)       # an odd width: the last column is not pooled
# The shape whose kernels the report names: VGG8's second layer at the training batch size.
REPORTED_SHAPE = (128, 64, 128, 16, 3, 1, 1)


def relative_error(got, expected):
    return float(np.abs(got - expected).max() / max(float(np.abs(expected).max()), 1e-30))


def _stack(layers, make):
    cells = []
    for cin, cout, kernel, stride, padding, bias, input_grad in layers:
        pad = dict(pad_mode="pad", padding=padding) if padding else dict(pad_mode="valid")
        cells += [make(cin, cout, kernel, stride=stride, has_bias=bias, input_grad=input_grad, **pad), nn.ReLU()]
    return nn.SequentialCell(cells[:-1])


def compare(library, layers, input_shape, seed=0):
    """Relative errors of a stack of ``KernelConv2d`` layers (ReLU between) against the same stack of
    ``nn.Conv2d`` with the same weights, on a random input and a random output cotangent: "y", each
    parameter gradient by name, "dx" (if the first layer has ``input_grad``; else "dx_is_zero")."""
    rng = np.random.default_rng(seed)
    ours = _stack(layers, lambda *a, input_grad, **k: KernelConv2d(library, *a, input_grad=input_grad, **k))
    reference = _stack(layers, lambda *a, input_grad, **k: nn.Conv2d(*a, **k))
    for mine, theirs in zip(ours.get_parameters(), reference.get_parameters()):
        value = rng.standard_normal(theirs.shape).astype(np.float32) / np.sqrt(np.prod(theirs.shape[1:]))
        theirs.set_data(ms.Tensor(value))
        mine.set_data(ms.Tensor(value))
    x = ms.Tensor(rng.standard_normal(input_shape).astype(np.float32))
    results = []
    for net in (ours, reference):
        y = net(x)
        dy = ms.Tensor(np.random.default_rng(seed + 1).standard_normal(y.shape).astype(np.float32))
        grad = ms.value_and_grad(Projected(net, dy), grad_position=0, weights=net.trainable_params())
        _, (dx, dparams) = grad(x)
        results.append((y.asnumpy(), dx.asnumpy(), [d.asnumpy() for d in dparams]))
    (y, dx, grads), (y_ref, dx_ref, grads_ref) = results
    errors = {"y": relative_error(y, y_ref)}
    for p, g, g_ref in zip(reference.trainable_params(), grads, grads_ref):
        errors[f"d {p.name}"] = relative_error(g, g_ref)
    if layers[0][-1]:
        errors["dx"] = relative_error(dx, dx_ref)
    else:
        errors["dx_is_zero"] = float(np.abs(dx).max()) == 0.0
    return errors


def compare_batchnorm(library, shape, relu=False, shortcut=False, seed=0):
    """Relative errors of ``KernelBatchNorm2d`` against ``BatchNormReLU`` (``nn.BatchNorm2d``, plus a
    shortcut if ``shortcut``, then a ReLU if ``relu``) in training mode (two steps, so that the
    moving statistics are updated twice): "y", "dx", ("dshortcut",) "dgamma", "dbeta",
    "moving_mean", "moving_variance"; then in inference mode, with those moving statistics,
    "inference y" and the gradients again."""
    rng = np.random.default_rng(seed)
    ours = KernelBatchNorm2d(library, shape[1], momentum=0.9, relu=relu)
    reference = BatchNormReLU(shape[1], momentum=0.9, relu=relu)
    for name in ("gamma", "beta"):
        value = ms.Tensor(rng.standard_normal(shape[1]).astype(np.float32))
        getattr(ours, name).set_data(value)
        getattr(reference, name).set_data(value)
    inputs = [ms.Tensor((3 * rng.standard_normal(shape) + 1).astype(np.float32))]
    if shortcut:
        inputs.append(ms.Tensor(rng.standard_normal(shape).astype(np.float32)))
    dy = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    names = ["y", "dx"] + (["dshortcut"] if shortcut else []) + ["dgamma", "dbeta"]

    def run(net):
        y = net(*inputs).asnumpy()
        positions = (0, 1) if shortcut else 0
        _, (dinputs, dparams) = ms.value_and_grad(Projected(net, dy), positions, net.trainable_params())(*inputs)
        dinputs = tuple(dinputs) if shortcut else (dinputs,)
        return [y] + [d.asnumpy() for d in dinputs + tuple(dparams)]

    results = []
    for net in (ours, reference):
        net.set_train(True)
        training = run(net) + [net.moving_mean.asnumpy(), net.moving_variance.asnumpy()]
        net.set_train(False)
        results.append(training + run(net))
    names = names + ["moving_mean", "moving_variance"] + [f"inference {name}" for name in names]
    return {name: relative_error(a, b) for name, a, b in zip(names, *results)}


def compare_maxpool(library, shape, seed=0):
    """Largest differences of ``KernelMaxPool2d`` from ``nn.MaxPool2d(2, 2)``: "y", "dx" (absolute,
    as both should be exact). Half the inputs are zeros, as after a ReLU: windows with ties."""
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)
    x = ms.Tensor(x)
    results = []
    for net in (KernelMaxPool2d(library), nn.MaxPool2d(kernel_size=2, stride=2)):
        y = net(x)
        dy = ms.Tensor(np.random.default_rng(seed + 1).standard_normal(y.shape).astype(np.float32))
        _, dx = ms.value_and_grad(Projected(net, dy), 0)(x)
        results.append((y.asnumpy(), dx.asnumpy()))
    (y, dx), (y_ref, dx_ref) = results
    return {"y": float(np.abs(y - y_ref).max()), "dx": float(np.abs(dx - dx_ref).max())}


def worst(errors):
    """(name, error) of the largest relative error; raises AssertionError if the input gradient of
    a first layer is not zero."""
    if errors.pop("dx_is_zero", True) is not True:
        raise AssertionError("the input gradient of a layer without input_grad is not zero")
    return max(errors.items(), key=lambda kv: kv[1])


class Projected(nn.Cell):
    """``sum(net(x) * dy)``: its gradients are the backward pass of ``net`` with cotangent ``dy``."""

    def __init__(self, net, dy):
        super().__init__()
        self.net, self.dy = net, dy

    def construct(self, *inputs):
        return (self.net(*inputs) * self.dy).sum()


def implementations(library, batch, cin, cout, side, kernel, stride, padding):
    """oneDNN's names of the kernels the library runs for this convolution and its gradients."""
    lib = ctypes.CDLL(library)
    out_side = (side + 2 * padding - kernel) // stride + 1
    dims = [(ctypes.c_int64 * 4)(*d) for d in ((batch, cin, side, side), (cout, cin, kernel, kernel),
                                               (batch, cout, out_side, out_side))]
    geometry = (ctypes.c_int64 * 8)(stride, stride, padding, padding, padding, padding, 1, 1)
    names = []
    for kind in (0, 1):   # forward; input and weight gradients
        buf = ctypes.create_string_buffer(512)
        if lib.ats_conv_implementations(kind, *dims, geometry, buf, len(buf)) != 0:
            lib.ats_conv_last_error.restype = ctypes.c_char_p
            raise RuntimeError(lib.ats_conv_last_error().decode())
        names.append(buf.value.decode())
    return ",".join(names)


def onednn_version():
    lib = ctypes.CDLL(onednn_library())

    class Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int)]

    lib.dnnl_version.restype = ctypes.POINTER(Version)
    v = lib.dnnl_version().contents
    return f"{v.major}.{v.minor}.{v.patch}"


def main(argv=None):
    (library,) = argv if argv is not None else sys.argv[1:]
    if attach(library) is None:
        print(json.dumps({"passed": False, "failure": f"{PLUGIN_ENV} names another library"}), flush=True)
        return
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)   # as in training: graph mode has rules of its own for bprops
    report = {"passed": False, "tolerance": TOLERANCE}
    try:
        largest = 0.0
        # The stack as it is, then with an input gradient in every layer.
        for layers in (CHECK_LAYERS, [layer[:-1] + (True,) for layer in CHECK_LAYERS]):
            name, error = worst(compare(library, layers, CHECK_INPUT))
            if not error <= TOLERANCE:
                raise AssertionError(f"convolution {name} differs by {error:.2e} (relative)")
            largest = max(largest, error)
        for relu, shortcut in BATCHNORM_KINDS:
            name, error = worst(compare_batchnorm(library, CHECK_BATCHNORM, relu, shortcut))
            if not error <= TOLERANCE:
                raise AssertionError(f"BatchNorm (relu {relu}, shortcut {shortcut}) {name} differs by "
                                     f"{error:.2e} (relative)")
            largest = max(largest, error)
        name, error = worst(compare_maxpool(library, CHECK_MAXPOOL))
        if error != 0:
            raise AssertionError(f"max-pooling {name} differs by {error:.2e}")
        report.update(passed=True, max_relative_error=largest, onednn=onednn_version(),
                      implementations=implementations(library, *REPORTED_SHAPE))
    except Exception as err:  # any failure means: do not use this kernel; the report says why
        report["failure"] = f"{type(err).__name__}: {err}"
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
