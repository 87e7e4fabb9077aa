"""Which kernel runs the networks' convolutions: MindSpore's own, or the package's oneDNN kernel.

MindSpore's CPU convolution hands oneDNN plain NCHW layouts, which leaves oneDNN im2col + GEMM on
AVX2 and its naive reference kernel on AVX-512 (hence the ``ONEDNN_MAX_CPU_ISA=AVX2`` cap, see
device.py). ``OneDNNConv2d`` runs the same convolution through ``src/onednn/conv_kernel.cc``, which
lets oneDNN pick its blocked-layout kernels (2-4x faster here). Its parameters, their names and
initialisation are ``nn.Conv2d``'s, so checkpoints do not depend on the engine.

The choice is made once per process, before the first convolution runs (device.py): with the oneDNN
kernel the ISA cap is not set, so every convolution MindSpore runs must be ours. Networks that are
exported (MindIR, ONNX) are built with ``plain_convolutions()``; they are never run by MindSpore here.
"""
import contextlib
import os

from .errors import UserError

CONV_ENGINES = ("auto", "onednn", "mindspore")
ENV_DEFAULT = "ATS_CONV_ENGINE"   # the default of --conv_engine (CI runs the suite both ways)

_state = {"engine": "mindspore", "library": None, "plain": False}


def default_conv_engine():
    return os.environ.get(ENV_DEFAULT, "auto")


def resolve_conv_engine(requested, device_target="CPU", log=None):
    """(engine, note): the engine a run uses and, when ``auto`` cannot use the oneDNN kernel, one
    line saying why. Activates the kernel when chosen. ``log`` hears about a first build."""
    if requested not in CONV_ENGINES:
        raise UserError(f"--conv_engine {requested!r}: expected one of {', '.join(CONV_ENGINES)}"
                        + (f" (check {ENV_DEFAULT})" if requested == os.environ.get(ENV_DEFAULT) else ""))
    if requested == "mindspore":
        return _activate("mindspore"), None
    if device_target != "CPU":
        if requested == "onednn":
            raise UserError(f"--conv_engine onednn: the oneDNN kernel runs on the CPU only, not on "
                            f"{device_target}")
        return _activate("mindspore"), None
    from .conv_build import KernelUnavailable, kernel_library
    try:
        library = kernel_library(log)
    except KernelUnavailable as err:
        if requested == "onednn":
            raise UserError(f"--conv_engine onednn: the oneDNN kernel cannot be used here: {err}") from None
        return _activate("mindspore"), f"conv engine: mindspore (the oneDNN kernel cannot be used: {err})"
    return _activate("onednn", library), None


def _activate(engine, library=None):
    _state.update(engine=engine, library=library)
    return engine


def active_engine():
    return _state["engine"]


def set_threads(threads):
    """Threads of the kernels' pool (default: every CPU this process may use)."""
    import ctypes
    if _state["library"]:
        ctypes.CDLL(_state["library"]).ats_set_threads(int(threads))


@contextlib.contextmanager
def plain_convolutions():
    """Networks built inside use ``nn.Conv2d`` whatever the engine: for export to MindIR or ONNX,
    whose readers know MindSpore's operators, not the package's kernel."""
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
    if _state["engine"] == "onednn" and not _state["plain"]:
        from .kernel_layers import OneDNNConv2d
        return OneDNNConv2d(_state["library"], cin, cout, kernel_size, input_grad=input_grad, **kwargs)
    return nn.Conv2d(cin, cout, kernel_size, **kwargs)


def batch_norm2d(channels, relu=False, **kwargs):
    """An ``nn.BatchNorm2d(channels, **kwargs)``, followed by a ReLU if ``relu`` (its ``relu``
    attribute says so); with the oneDNN engine its training mode runs in the package's BatchNorm
    kernel, which comes with the convolution kernel (src/kernels/)."""
    if _state["engine"] == "onednn" and not _state["plain"]:
        from .kernel_layers import KernelBatchNorm2d
        return KernelBatchNorm2d(_state["library"], channels, relu=relu, **kwargs)
    from .kernel_layers import BatchNormReLU
    return BatchNormReLU(channels, relu=relu, **kwargs)


def max_pool2x2():
    """``nn.MaxPool2d(kernel_size=2, stride=2)``, run by the package's kernel with the oneDNN engine."""
    from mindspore import nn
    if _state["engine"] == "onednn" and not _state["plain"]:
        from .kernel_layers import KernelMaxPool2d
        return KernelMaxPool2d(_state["library"])
    return nn.MaxPool2d(kernel_size=2, stride=2)
