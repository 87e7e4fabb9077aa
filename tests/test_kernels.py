"""The package's CPU kernels (--conv_engine onednn): same numbers as nn.Conv2d and nn.BatchNorm2d for
every convolution and BatchNorm of the networks, same training, bit-identical deterministic runs, no
convolution on a reference kernel, and a clear fallback (or error) where they cannot be built."""
import contextlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SESSION_ENGINE, run_entry
from network_shapes import every_batchnorm, every_convolution

from src.errors import UserError
from src.kernels import build as kernel_build
from src.kernels.build import KernelUnavailable
from src.kernels.engine import resolve_conv_engine
from src.kernels.loader import PLUGIN_ENV, attached


def kernel_or_skip():
    try:
        library = kernel_build.kernel_library()
    except KernelUnavailable as err:
        pytest.skip(f"the package's kernels cannot be used here: {err}")
    if not attached(library):
        pytest.skip("MindSpore on Windows calls the kernels only if they are attached before its first operator, "
                    f"and the session's setup_device did not choose them ({SESSION_ENGINE['note']})")
    return library


def pytest_generate_tests(metafunc):
    """The networks' convolution and BatchNorm shapes, found when these tests are collected (building
    the networks takes a few seconds: not at import)."""
    if "conv_spec" in metafunc.fixturenames:
        metafunc.parametrize("conv_spec", sorted(every_convolution()), ids=lambda s: "c{}-{}_k{}s{}p{}{}{}".format(
            *s[:5], "_bias" if s[5] else "", "" if s[6] else "_first"))
    if "bn_shape" in metafunc.fixturenames:
        metafunc.parametrize("bn_shape", sorted(every_batchnorm()), ids=lambda s: "c{}_side{}".format(s[1], s[2]))


def test_every_network_convolution_matches_nn_conv2d(conv_spec):
    """Forward, input gradient and weight (and bias) gradients within 1e-5 relative of nn.Conv2d."""
    from src.kernels.check import TOLERANCE, compare, worst
    library = kernel_or_skip()
    errors = compare(library, [conv_spec], every_convolution()[conv_spec])
    assert "y" in errors and any(k.endswith("0.weight") for k in errors) and ("dx" in errors) == conv_spec[6]
    assert any(k.endswith("0.bias") for k in errors) == conv_spec[5]
    name, error = worst(errors)
    assert error <= TOLERANCE, (name, error)


@pytest.mark.parametrize("relu, shortcut", [(False, False), (True, False), (True, True)],
                         ids=["bn", "bn_relu", "bn_add_relu"])
def test_every_network_batchnorm_matches_nn_batchnorm2d(bn_shape, relu, shortcut):
    """Training-mode output, input and parameter gradients, and moving statistics after two steps,
    then inference-mode output and gradients with those statistics, within 1e-5 relative of
    nn.BatchNorm2d (then the shortcut's sum and nn.ReLU, if fused) (WRN's pre-activation BatchNorms
    see a stage's input side: a few shapes are checked at a side they do not meet, which proves as
    much)."""
    from src.kernels.check import TOLERANCE, compare_batchnorm, worst
    library = kernel_or_skip()
    name, error = worst(compare_batchnorm(library, bn_shape, relu, shortcut))
    assert error <= TOLERANCE, (name, error)


@pytest.mark.parametrize("shape", [(4, 64, 32, 32), (4, 128, 16, 16), (4, 256, 8, 8), (2, 3, 5, 7)])
def test_max_pooling_equals_nn_maxpool2d(shape):
    """VGG's pooling shapes (and odd sides): output and gradient exactly nn.MaxPool2d's, ties included."""
    from src.kernels.check import compare_maxpool
    library = kernel_or_skip()
    assert compare_maxpool(library, shape) == {"y": 0.0, "dx": 0.0}


def copy_parameters(source, target):
    """``target`` starts from ``source``'s parameter values (same names), as copies."""
    import mindspore as ms
    ms.load_param_into_net(target, {p.name: ms.Parameter(p.asnumpy().copy(), name=p.name)
                                    for p in source.get_parameters()})


def blocked_chain(library, block):
    """conv -> BN+ReLU, then a residual block's two branches (a strided conv with bias -> BN, a 1x1
    conv -> BN, summed with the ReLU), then max-pooling and the global average: every kernel, each
    in its layouts (``block`` 0: plain), the stem's gradient summed where the branches meet."""
    from mindspore import nn

    from src.kernels.layers import KernelBatchNorm2d, KernelConv2d, KernelMaxPool2d
    from src.nets.layers import global_average_pool

    class Chain(nn.Cell):
        def __init__(self):
            super().__init__()
            self.conv1 = KernelConv2d(library, 3, 16, 3, pad_mode="pad", padding=1, input_grad=False, block=block)
            self.bn1 = KernelBatchNorm2d(library, 16, relu=True)
            self.conv2 = KernelConv2d(library, 16, 32, 3, stride=2, pad_mode="pad", padding=1, has_bias=True,
                                      block=block)
            self.bn2 = KernelBatchNorm2d(library, 32, relu=True)
            self.shortcut = KernelConv2d(library, 16, 32, 1, stride=2, pad_mode="valid", block=block)
            self.bn3 = KernelBatchNorm2d(library, 32)
            self.pool = KernelMaxPool2d(library)

        def construct(self, x):
            a = self.bn1(self.conv1(x))
            return global_average_pool(self.pool(self.bn2(self.conv2(a), self.bn3(self.shortcut(a)))))

    return Chain()


def test_blocked_layouts_match_plain_ones():
    """Between the kernels activations stay in oneDNN's blocked layout (the block this processor's
    convolutions want); the same layers on plain tensors give the same training-mode output and
    moving statistics, and inference-mode output, within 1e-5 relative, and the same gradients
    within 1e-5 of the largest (the bias before a BatchNorm has a gradient of pure rounding)."""
    import ctypes

    import mindspore as ms

    from src.kernels.check import Projected
    library = kernel_or_skip()
    block = ctypes.CDLL(library).ats_block_size()
    if not block:
        pytest.skip("this processor's convolution kernels want no blocked layout")
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((16, 3, 16, 16)).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal((16, 32)).astype(np.float32))
    plain, ours = blocked_chain(library, 0), blocked_chain(library, block)
    copy_parameters(plain, ours)
    results = []
    for model in (ours, plain):
        model.set_train(True)
        loss, grads = ms.value_and_grad(Projected(model, dy), None, model.trainable_params())(x)
        model.set_train(False)
        results.append(([loss.asnumpy(), model(x).asnumpy(),
                          *(p.asnumpy() for p in model.get_parameters() if "moving" in p.name)],
                         [g.asnumpy() for g in grads]))
    (values, grads), (values_ref, grads_ref) = results
    for got, want in zip(values, values_ref):
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    scale = max(np.abs(r).max() for r in grads_ref)
    for p, g, r in zip(plain.trainable_params(), grads, grads_ref):
        assert np.abs(g - r).max() <= 1e-5 * scale, p.name


@contextlib.contextmanager
def engine(name, library=None):
    """Networks built inside use ``name``'s convolutions."""
    from src.kernels.engine import _activate, _state
    previous = _state["engine"], _state["library"]
    _activate(name, library)
    try:
        yield
    finally:
        _activate(*previous)


@pytest.mark.parametrize("net, n_layer, width", [("VGG", 8, 1), ("ResNet", 8, 1), ("WRN", 16, 2)])
def test_whole_network_gradients_match(net, n_layer, width):
    """A network's output and every parameter gradient (graph mode, both kinds of layer in one graph)
    within 1e-5 of nn.Conv2d's, relative to the largest gradient.

    BatchNorm in inference mode: with training-mode batch statistics of 4 images, BatchNorm's
    backward amplifies rounding so much that nn.Conv2d's own network, fed the same images changed
    in their last bit, moves its gradients by up to 5e-3 (measured, WRN16-2); inference mode keeps
    the comparison at rounding level (about 4e-7 measured)."""
    import mindspore as ms

    from src.kernels.check import Projected
    from src.nets.models import build_network
    library = kernel_or_skip()
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((4, 3, 32, 32)).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal((4, 10)).astype(np.float32))
    with engine("mindspore"):
        plain = build_network(net, n_layer, 10, width)
    with engine("onednn", library):
        ours = build_network(net, n_layer, 10, width)
    copy_parameters(plain, ours)
    results = []
    for model in (ours, plain):
        model.set_train(False)
        loss, grads = ms.value_and_grad(Projected(model, dy), None, model.trainable_params())(x)
        results.append((float(loss.asnumpy()), [g.asnumpy() for g in grads]))
    (loss, grads), (loss_ref, grads_ref) = results
    assert abs(loss - loss_ref) <= 1e-5 * abs(loss_ref)
    scale = max(np.abs(r).max() for r in grads_ref)
    for p, g, r in zip(plain.trainable_params(), grads, grads_ref):
        assert np.abs(g - r).max() <= 1e-5 * scale, p.name


def test_checkpoints_do_not_depend_on_the_engine(tmp_path):
    """A network of one engine saves a checkpoint that loads into the other with the same logits."""
    import mindspore as ms

    from src.nets.models import build_network
    from src.storage.checkpoint import load_into, save_atomic
    library = kernel_or_skip()
    x = ms.Tensor(np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32))
    with engine("onednn", library):
        ours = build_network("ResNet", 8, 10)
    with engine("mindspore"):
        plain = build_network("ResNet", 8, 10)
    path = str(tmp_path / "r8.ckpt")
    save_atomic(ours, path)
    load_into(plain, path)
    ours.set_train(False)
    plain.set_train(False)
    expected, got = ours(x).asnumpy(), plain(x).asnumpy()
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


# -- whole runs, each engine, in fresh processes ---------------------------------------------------
RUN = ["--download", "False", "--net", "ResNet", "--n_layer", "8", "--epoches", "2", "--batch_size", "64",
       "--seed", "3", "--deterministic", "True", "--ckpt_name", "r8.ckpt"]


@pytest.fixture(scope="module")
def engine_runs(cifar100_dir, tmp_path_factory):
    """run_classify.py, 2 epochs, deterministic: twice with the package's kernels, once with MindSpore's."""
    kernel_or_skip()
    root = tmp_path_factory.mktemp("engines")
    procs = {}
    for name, engine in (("onednn", "onednn"), ("onednn_again", "onednn"), ("mindspore", "mindspore")):
        folder = str(root / name)
        procs[name] = (folder, subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "run_classify.py"), "--data_dir", cifar100_dir, *RUN,
             "--ckpt_dir", folder, "--log_dir", folder, "--conv_engine", engine],
            env=dict(os.environ, GLOG_v="3"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for name, (folder, proc) in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    return {name: folder for name, (folder, _) in procs.items()}


def metrics(folder):
    with open(os.path.join(folder, "r8.metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_same_loss_curve_with_each_engine(engine_runs):
    ours, theirs = metrics(engine_runs["onednn"]), metrics(engine_runs["mindspore"])
    assert len(ours) == len(theirs) == 2
    # Float rounding differs between the engines' kernels (measured: 7e-6 relative after the first
    # epoch's 4 steps, 2e-4 after 8, as the difference grows with training).
    assert ours[0]["loss"] == pytest.approx(theirs[0]["loss"], rel=1e-4)
    assert ours[1]["loss"] == pytest.approx(theirs[1]["loss"], rel=1e-3)
    for a, b in zip(ours, theirs):
        assert a["test_acc"] == pytest.approx(b["test_acc"], abs=0.02)   # one image of 100 may flip


def test_deterministic_runs_bit_identical_with_the_kernel(engine_runs):
    def read(name):
        with open(os.path.join(engine_runs[name], "r8.ckpt"), "rb") as f:
            return f.read()
    assert read("onednn") == read("onednn_again")
    assert read("onednn") != read("mindspore")    # float rounding differs between the engines


def test_engine_recorded_in_run_record_and_log(engine_runs):
    for name, engine in (("onednn", "onednn"), ("mindspore", "mindspore")):
        with open(os.path.join(engine_runs[name], "r8.run.json")) as f:
            record = json.load(f)
        assert record["args"]["conv_engine"] == engine
        assert record["environment"]["conv_engine"] == engine
        with open(os.path.join(engine_runs[name], "student-nokd.log")) as f:
            assert f"# conv_engine: {engine}\n" in f.read()


PROBE = """
import sys
import numpy as np
from src.device import setup_device
setup_device("CPU", 0, conv_engine=sys.argv[1])
import mindspore as ms
from mindspore import nn
from src.nets.models import build_network
from src.teacher.frozen import Teacher
from src.nets.fold_bn import fold_batchnorm
from src.losses import DistillLoss
from src.training.train_step import TrainStep
x = ms.Tensor(np.random.rand(4, 3, 32, 32).astype(np.float32))
y = ms.Tensor(np.arange(4).astype(np.int32))
t = ms.Tensor(np.random.rand(4, 10).astype(np.float32))
for spec in (("VGG", 8, 1), ("ResNet", 8, 1), ("WRN", 16, 2)):
    net = build_network(*spec[:2], 10, spec[2])
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    step = TrainStep(net, DistillLoss(0.5, 4.0, 2.0, 1.0), opt)
    step.set_train(True)
    step(x, y, t).asnumpy()
    net.set_train(False)
    net(x).asnumpy()
    teacher = build_network(*spec[:2], 10, spec[2])
    fold_batchnorm(teacher)
    Teacher(teacher)(x.asnumpy())
"""


# The primitives oneDNN may run on its reference kernel. On AVX2 (natively or capped there) oneDNN 3.10
# has only the reference kernel for softmax backward, which MindSpore's loss gradient runs: measured
# (ONEDNN_VERBOSE=profile_exec) at 0.02% of a VGG8 distillation step at batch 128 and 100 classes. A
# convolution on the reference kernel is about 300x slower than on a blocked one. The list is a fixed
# set, not a share of the measured time: a loaded machine moves timings (1.4% of a probe seen once).
REFERENCE_ALLOWED = {"softmax"}


@pytest.mark.parametrize("engine, isa", [("onednn", None), ("onednn", "AVX2"), ("mindspore", None)],
                         ids=["onednn", "onednn-avx2", "mindspore"])
def test_no_convolution_runs_the_reference_kernel(engine, isa):
    """oneDNN names each primitive it runs (ONEDNN_VERBOSE=1): training, evaluation and a folded
    MindSpore teacher of every network family. No convolution may run oneDNN's naive reference kernel,
    with either engine, on the machine's own ISA or capped at AVX2 (how an AVX-512 machine tests the
    AVX2 path); no primitive but those measured to cost almost nothing may run one."""
    if engine == "onednn":
        kernel_or_skip()
    env = dict(os.environ, GLOG_v="3", ONEDNN_VERBOSE="1")
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if isa:
        # Capped, the probe builds and attaches a library of its own: on Windows the plugin path
        # this process set names another build, which the probe would refuse.
        env["ONEDNN_MAX_CPU_ISA"] = isa
        env.pop(PLUGIN_ENV, None)
    proc = subprocess.run([sys.executable, "-c", PROBE, engine], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    executed = [line.split(",") for line in proc.stdout.splitlines()
                if line.startswith("onednn_verbose") and ",exec,cpu," in line]
    convolutions = [f[6] for f in executed if f[5] == "convolution"]
    assert convolutions and not [impl for impl in convolutions if "ref" in impl]
    assert not sorted({",".join(f[5:8]) for f in executed if "ref" in f[6] and f[5] not in REFERENCE_ALLOWED})


# -- where the kernels cannot be used -------------------------------------------------------------
def test_auto_falls_back_with_the_reason_and_onednn_refuses(monkeypatch):
    def unavailable(log=None):
        raise KernelUnavailable("no C++ compiler found (pip install ziglang, or set CXX)")

    monkeypatch.setattr(kernel_build, "kernel_library", unavailable)
    with engine("mindspore"):   # resolving activates the engine chosen; restored afterwards
        assert resolve_conv_engine("auto") == (
            "mindspore", "conv engine: mindspore (the package's kernels cannot be used: no C++ compiler "
                         "found (pip install ziglang, or set CXX))")
        with pytest.raises(UserError, match=r"^--conv_engine onednn: the package's kernels cannot be used here: "
                                            r"no C\+\+ compiler"):
            resolve_conv_engine("onednn")
        assert resolve_conv_engine("auto", "GPU") == ("mindspore", None)
        with pytest.raises(UserError, match="^--conv_engine onednn: the package's kernels run on the CPU only"):
            resolve_conv_engine("onednn", "Ascend")
        assert resolve_conv_engine("mindspore") == ("mindspore", None)
        with pytest.raises(UserError, match="^--conv_engine 'fast': expected one of auto, onednn, mindspore"):
            resolve_conv_engine("fast")


def test_a_plugin_library_of_the_users_is_left_alone(monkeypatch):
    """On Windows MindSpore loads one op-plugin library: if MS_OP_PLUGIN_PATH names another one, auto
    falls back in one line and leaves the variable as it was; the same build in another cache (set
    by a parent process) is used as it is."""
    from src.kernels import loader
    from src.kernels.engine import _state
    monkeypatch.setattr(loader, "uses_plugin", lambda: True)
    ours = os.path.abspath(os.path.join(os.sep, "cache", "kernels-1", "atskernels.dll"))   # as attach sets it
    monkeypatch.setattr(kernel_build, "kernel_library", lambda log=None: ours)
    theirs = os.path.join(os.sep, "elsewhere", "theirs.dll")
    monkeypatch.setenv(PLUGIN_ENV, theirs)
    with engine("mindspore"):
        assert resolve_conv_engine("auto") == (
            "mindspore", f"conv engine: mindspore (the package's kernels cannot be used: {PLUGIN_ENV} names "
                         f"another library ({theirs}), and MindSpore loads only one)")
        with pytest.raises(UserError, match=f"^--conv_engine onednn: .* {PLUGIN_ENV} names another library"):
            resolve_conv_engine("onednn")
        assert os.environ[PLUGIN_ENV] == theirs
        same_build = os.path.join(os.sep, "other-cache", "kernels-1", "atskernels.dll")
        monkeypatch.setenv(PLUGIN_ENV, same_build)
        assert resolve_conv_engine("auto") == ("onednn", None) and _state["library"] == same_build
        monkeypatch.delenv(PLUGIN_ENV)
        assert resolve_conv_engine("auto") == ("onednn", None) and os.environ[PLUGIN_ENV] == ours


def test_a_later_setup_in_the_process_keeps_the_same_kernels(monkeypatch):
    """An entry point called in-process (analyze_teacher, export) sets the device up again, with
    MindSpore's layers: it sets no ISA cap then (too late to take effect), so the kernels' cache key,
    and on Windows the library attached, stay those of the process's first setup."""
    from src.device import setup_device
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    library = kernel_or_skip()
    setup_device("CPU", conv_engine="mindspore")
    assert "ONEDNN_MAX_CPU_ISA" not in os.environ
    assert kernel_build.kernel_library() == library and attached(library)


def test_the_library_lists_its_operators_for_the_plugin_loader():
    """GetAllRegisteredOps, which MindSpore's op-plugin loader asks, names every kernel entry point."""
    import ctypes
    library = ctypes.CDLL(kernel_or_skip())
    library.GetAllRegisteredOps.restype = ctypes.POINTER(ctypes.c_char_p)
    names = library.GetAllRegisteredOps()
    assert sorted(names[i].decode() for i in range(library.GetRegisteredOpCount())) == sorted(
        [f"ats_conv_{kind}" for kind in ("forward", "forward_no_dx", "forward_bias", "forward_bias_no_dx", "backward",
                                         "backward_bias", "backward_weights", "backward_weights_bias")]
        + [f"ats_bn_{kind}{fused}" for kind in ("forward", "backward", "inference")
           for fused in ("", "_relu", "_add_relu")]
        + ["ats_maxpool_forward", "ats_maxpool_backward"])


@pytest.mark.parametrize("system, machine, reason", [
    ("darwin", "x86_64", "the kernels are built on Linux and Windows only, not darwin"),
    ("linux", "aarch64", "the kernels target x86-64 processors, not aarch64"),
])
def test_platforms_without_the_kernels(monkeypatch, system, machine, reason):
    monkeypatch.setattr(kernel_build.sys, "platform", system)
    monkeypatch.setattr(kernel_build.platform, "machine", lambda: machine)
    with pytest.raises(KernelUnavailable, match=f"^{reason}$"):
        kernel_build.kernel_library()


def test_no_compiler(monkeypatch):
    if kernel_build.platform_problem():
        pytest.skip(kernel_build.platform_problem())
    import importlib.util
    monkeypatch.setenv("CXX", "")
    monkeypatch.setenv("PATH", "")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "ziglang" else find_spec(name, *rest))
    with pytest.raises(KernelUnavailable, match=r"^no C\+\+ compiler found \(pip install ziglang, or set CXX\)$"):
        kernel_build.kernel_library()


def failing_compilers(folder):
    """A folder of g++, c++ and clang++ that fail as a broken installation would (for PATH)."""
    folder.mkdir()
    for name in ("g++", "c++", "clang++"):
        (folder / name).write_text("#!/bin/sh\nexit 1\n")
        (folder / name).chmod(0o755)
    return folder


def test_a_system_compiler_is_probed_only_when_its_build_is_not_cached(tmp_path, monkeypatch):
    """A g++ that fails a test build is passed over (here for no compiler at all: zig hidden); one
    whose build is in the cache is used without a probe. A working compiler (zig's) passes the probe."""
    from src.kernels import compiler
    if kernel_build.platform_problem() or sys.platform == "win32":
        pytest.skip("system compilers are probed on Linux")
    if compiler.zig():
        assert compiler.works(compiler.zig())
    bin_dir = failing_compilers(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("CXX", "")
    monkeypatch.setenv("ATS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(compiler, "zig", lambda: None)
    assert not compiler.works([str(bin_dir / "g++")])
    probed = []

    def probe(cxx):
        probed.append(cxx[0])
        return False

    monkeypatch.setattr(compiler, "works", probe)
    onednn = kernel_build.onednn_library()
    failed = r"^no working C\+\+ compiler found \(.*/g\+\+, .*/c\+\+, .*/clang\+\+ failed a test build; "
    with pytest.raises(KernelUnavailable, match=failed + r"pip install ziglang, or set CXX\)$"):
        kernel_build.choose_compiler(onednn)
    assert probed == [str(bin_dir / name) for name in ("g++", "c++", "clang++")]
    gpp = [str(bin_dir / "g++")]
    entry = os.path.join(tmp_path, "cache", f"kernels-{kernel_build.cache_key(gpp, onednn)}")
    os.makedirs(entry)
    with open(os.path.join(entry, kernel_build.CHECK_FILE), "w") as f:
        f.write("{}")
    probed.clear()
    assert kernel_build.choose_compiler(onednn) == (gpp, entry) and probed == []


ZIG_RUN = """
from src.device import setup_device
from src.kernels.engine import _state
print(setup_device("CPU", 0, conv_engine="auto")[0], _state["library"])
"""


def test_without_a_working_gpp_the_kernels_are_built_by_zig(tmp_path):
    """A machine whose g++ is broken, then one without any: auto still runs the package's kernels,
    built by zig's clang (the ziglang package of the requirements), self-checked, cached once."""
    if kernel_build.platform_problem() or sys.platform == "win32":
        pytest.skip("on Windows zig comes before any system compiler")
    from src.kernels import compiler
    if compiler.zig() is None:
        pytest.skip("the ziglang package of the requirements is not installed")
    env = dict(os.environ, GLOG_v="3", ATS_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("CXX", None)
    libraries = []
    for path in (failing_compilers(tmp_path / "broken"), tmp_path / "none"):
        proc = subprocess.run([sys.executable, "-c", ZIG_RUN], cwd=ROOT, env=dict(env, PATH=str(path)),
                              capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, proc.stderr[-2000:]
        engine, library = proc.stdout.split()
        assert engine == "onednn"
        libraries.append(library)
    (entry,) = os.listdir(tmp_path / "cache")
    assert libraries == [str(tmp_path / "cache" / entry / kernel_build.library_name())] * 2
    with open(tmp_path / "cache" / entry / kernel_build.CHECK_FILE) as f:
        report = json.load(f)
    assert report["passed"] and report["compiler"] == " ".join(compiler.zig())


def test_failed_build_or_check_leaves_no_cache_entry(tmp_path, monkeypatch):
    """A build error, or a library that fails its self-check, is reported in one line and leaves the
    cache as it was (no entry, no temporary folder); the next try builds again."""
    if kernel_build.platform_problem():
        pytest.skip(kernel_build.platform_problem())
    monkeypatch.setenv("ATS_CACHE_DIR", str(tmp_path / "cache"))
    broken = tmp_path / "src"
    broken.mkdir()
    for name in kernel_build.SOURCES:
        (broken / name).write_text("int broken( {\n" if name == "conv_kernel.cc" else "")
    monkeypatch.setattr(kernel_build, "SOURCE_DIR", str(broken))
    with pytest.raises(KernelUnavailable, match=r"^the C\+\+ build failed: .*conv_kernel\.cc:1:"):
        kernel_build.kernel_library()
    assert os.listdir(tmp_path / "cache") == []
    monkeypatch.undo()
    monkeypatch.setenv("ATS_CACHE_DIR", str(tmp_path / "cache"))

    def failing_check(library):
        raise KernelUnavailable("their self-check against MindSpore's layers failed (AssertionError: "
                                "convolution y differs)")

    monkeypatch.setattr(kernel_build, "self_check", failing_check)
    with pytest.raises(KernelUnavailable, match="self-check against MindSpore's layers failed"):
        kernel_build.kernel_library()
    assert os.listdir(tmp_path / "cache") == []


def test_concurrent_first_builds_share_one_cache_entry(tmp_path):
    """Two processes building into an empty cache at once both get a checked library, and the cache
    ends with exactly one entry (the loser of the final rename discards its own copy)."""
    if kernel_build.platform_problem():
        pytest.skip(kernel_build.platform_problem())
    env = dict(os.environ, ATS_CACHE_DIR=str(tmp_path), GLOG_v="3")
    code = "from src.kernels.build import kernel_library; print(kernel_library())"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    paths = {o.strip() for o, _ in outs}
    assert len(paths) == 1
    (entry,) = os.listdir(tmp_path)
    assert sorted(os.listdir(tmp_path / entry)) == sorted(["check.json", kernel_build.library_name()])
    with open(tmp_path / entry / "check.json") as f:
        report = json.load(f)
    assert report["passed"] and report["max_relative_error"] <= 1e-5 and "ref" not in report["implementations"]


def test_conv_engine_flag_and_its_environment_default(cifar100_dir, tmp_path, monkeypatch):
    import run_classify
    monkeypatch.setenv("ATS_CONV_ENGINE", "mindspore")
    assert run_classify.build_parser().parse_args([]).conv_engine == "mindspore"
    monkeypatch.delenv("ATS_CONV_ENGINE")
    assert run_classify.build_parser().parse_args([]).conv_engine == "auto"
    proc = run_entry("run_classify.py", "--data_dir", cifar100_dir, "--conv_engine", "fast",
                     "--ckpt_dir", tmp_path, "--log_dir", tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--conv_engine: invalid choice: 'fast'" in proc.stderr
    assert os.listdir(tmp_path) == []
