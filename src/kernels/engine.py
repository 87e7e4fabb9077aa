"""Which kernels run the networks' layers (``--conv_engine``): MindSpore's own, or the package's.

MindSpore's CPU convolution hands oneDNN plain NCHW layouts, which leaves oneDNN im2col + GEMM on
AVX2 and its naive reference kernel on AVX-512 (hence the ``ONEDNN_MAX_CPU_ISA=AVX2`` cap, see
src/device.py). With the package's kernels (engine ``onednn``) the layer constructors below return
the layers of ``layers.py``: convolutions through ``conv_kernel.cc``, which lets oneDNN pick its
blocked-layout kernels, BatchNorm (+ ReLU, + a residual block's sum) through ``batchnorm_kernel.cc``
and 2x2 max-pooling through ``maxpool_kernel.cc``. Their parameters, names and initialisation are
MindSpore's, so checkpoints do not depend on the engine. Between these layers the activations and
their gradients stay in the blocked layout oneDNN's convolutions want ([N, C/B, H, W, B], B from the
library: 16 with AVX-512, 8 with AVX2), as the first convolution outputs them; networks read them
through ``global_average_pool`` (src/nets/layers.py), which gives plain [N, C] features.

The choice is made once per process, before the first layer runs (src/device.py): with the
package's kernels the ISA cap is not set, so every convolution MindSpore runs must be ours; and on
Windows MindSpore finds the kernels only if told before its first operator (loader.py). Networks
that are exported (MindIR, ONNX) are built inside ``mindspore_layers()``; they are never run by
MindSpore here.
"""
import contextlib
import os

from ..errors import UserError

CONV_ENGINES = ("auto", "onednn", "mindspore")
ENV_DEFAULT = "ATS_CONV_ENGINE"   # the default of --conv_engine (CI runs the suite both ways)

_state = {"engine": "mindspore", "library": None, "plain": False, "block": None}


def default_conv_engine():
    return os.environ.get(ENV_DEFAULT, "auto")


def resolve_conv_engine(requested, device_target="CPU", log=None):
    """(engine, note): the engine a run uses and, when ``auto`` cannot use the package's kernels,
    one line saying why. Activates the kernels when chosen. ``log`` hears about a first build."""
    if requested not in CONV_ENGINES:
        raise UserError(f"--conv_engine {requested!r}: expected one of {', '.join(CONV_ENGINES)}"
                        + (f" (check {ENV_DEFAULT})" if requested == os.environ.get(ENV_DEFAULT) else ""))
    if requested == "mindspore":
        return _activate("mindspore"), None
    if device_target != "CPU":
        if requested == "onednn":
            raise UserError(f"--conv_engine onednn: the package's kernels run on the CPU only, not on "
                            f"{device_target}")
        return _activate("mindspore"), None
    from .build import KernelUnavailable, kernel_library
    from .loader import PLUGIN_ENV, attach
    try:
        library = attach(kernel_library(log))
        if library is None:
            raise KernelUnavailable(f"{PLUGIN_ENV} names another library ({os.environ[PLUGIN_ENV]}), and "
                                    f"MindSpore loads only one")
    except KernelUnavailable as err:
        if requested == "onednn":
            raise UserError(f"--conv_engine onednn: the package's kernels cannot be used here: {err}") from None
        return _activate("mindspore"), f"conv engine: mindspore (the package's kernels cannot be used: {err})"
    return _activate("onednn", library), None


def _activate(engine, library=None):
    _state.update(engine=engine, library=library, block=None)
    return engine


def _kernels():
    """The library of the package's kernels if new layers are to use them, else None."""
    return _state["library"] if _state["engine"] == "onednn" and not _state["plain"] else None


def _block():
    """The channel block of the convolution kernels' layout on this processor (0: plain)."""
    if _state["block"] is None:
        import ctypes
        _state["block"] = int(ctypes.CDLL(_state["library"]).ats_block_size())
    return _state["block"]


def set_threads(threads):
    """Threads of the kernels' pool (default: every CPU this process may use)."""
    import ctypes
    if _state["library"]:
        ctypes.CDLL(_state["library"]).ats_set_threads(int(threads))


@contextlib.contextmanager
def mindspore_layers():
    """Networks built inside use MindSpore's layers whatever the engine: for export to MindIR or
    ONNX, whose readers know MindSpore's operators, not the package's kernels."""
    previous = _state["plain"]
    _state["plain"] = True
    try:
        yield
    finally:
        _state["plain"] = previous


def conv2d(cin, cout, kernel_size, input_grad=True, **kwargs):
    """An ``nn.Conv2d(cin, cout, kernel_size, **kwargs)``, run by the active engine. ``input_grad``
    False: no gradient flows to the input (a network's first layer, whose input is the images)."""
    from mindspore import nn
    if _kernels():
        from .layers import KernelConv2d
        return KernelConv2d(_kernels(), cin, cout, kernel_size, input_grad=input_grad, block=_block(), **kwargs)
    return nn.Conv2d(cin, cout, kernel_size, **kwargs)


def batch_norm2d(channels, relu=False, **kwargs):
    """An ``nn.BatchNorm2d(channels, **kwargs)``, followed by a ReLU if ``relu`` (its ``relu``
    attribute says so); with the package's kernels it runs in their BatchNorm kernel."""
    if _kernels():
        from .layers import KernelBatchNorm2d
        return KernelBatchNorm2d(_kernels(), channels, relu=relu, **kwargs)
    from .layers import BatchNormReLU
    return BatchNormReLU(channels, relu=relu, **kwargs)


def max_pool2x2():
    """``nn.MaxPool2d(kernel_size=2, stride=2)``, run by the package's kernel with its engine."""
    from mindspore import nn
    if _kernels():
        from .layers import KernelMaxPool2d
        return KernelMaxPool2d(_kernels())
    return nn.MaxPool2d(kernel_size=2, stride=2)
