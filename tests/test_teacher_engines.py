"""The teacher engines change no result: BatchNorm folding and the ONNX Runtime teacher give the plain
MindSpore teacher's logits within float32 rounding, and a distillation step the same loss."""
import importlib.util
import os

import numpy as np
import pytest

from src.errors import UserError
from src.nets.models import build_network
from src.storage.checkpoint import save_atomic

# Relative tolerance (max |difference| / max |logit|): folding and another engine only change the
# order of float32 operations; measured differences are about 1e-7 to 1e-6.
LOGIT_RTOL = 1e-5


def trained_like(net, n_layer, width=1, n_classes=10, seed=0):
    """A network whose BatchNorm layers hold non-trivial statistics and affine parameters, as a
    trained one does (at initialisation they are identities and folding would prove little)."""
    import mindspore as ms
    from mindspore import nn
    rng = np.random.default_rng(seed)
    model = build_network(net, n_layer, n_classes, width)
    for _, cell in model.cells_and_names():
        if isinstance(cell, nn.BatchNorm2d):
            n = cell.gamma.shape[0]
            for param, values in ((cell.gamma, rng.uniform(0.5, 1.5, n)), (cell.beta, rng.normal(0, 0.2, n)),
                                  (cell.moving_mean, rng.normal(0, 0.5, n)),
                                  (cell.moving_variance, rng.uniform(0.5, 3.0, n))):
                param.set_data(ms.Tensor(values.astype(np.float32)))
    return model


def images(n, seed=1):
    return np.random.default_rng(seed).standard_normal((n, 3, 32, 32)).astype(np.float32)


def logits_of(net, x):
    from src.training.evaluate import cell_forward
    return cell_forward(net)(x)


def assert_same_logits(a, b):
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= LOGIT_RTOL * np.abs(a).max()
    assert np.array_equal(a.argmax(1), b.argmax(1))


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    """A ResNet8 teacher checkpoint with trained-like BatchNorm, and the plain eval-mode logits."""
    folder = tmp_path_factory.mktemp("teacher")
    net = trained_like("ResNet", 8)
    path = str(folder / "teacher.ckpt")
    save_atomic(net, path)
    net.set_train(False)
    x = images(24)
    return path, x, logits_of(net, x)


@pytest.mark.parametrize("net, n_layer, width, n_folded, n_left", [
    ("ResNet", 14, 1, 15, 0),  # stem + 2 per block + 2 shortcuts: every BatchNorm
    ("VGG", 8, 1, 5, 0),       # every BatchNorm
    ("WRN", 16, 2, 6, 7),      # bn2 of each block; bn1 of each block and the last one follow a sum
])
def test_folded_network_gives_the_plain_logits(net, n_layer, width, n_folded, n_left):
    import mindspore as ms
    from mindspore import nn

    from src.nets.fold_bn import fold_batchnorm
    plain = trained_like(net, n_layer, width)
    folded = build_network(net, n_layer, 10, width)
    ms.load_param_into_net(folded, {p.name: ms.Parameter(p.asnumpy().copy(), name=p.name)
                                    for p in plain.get_parameters()})
    plain.set_train(False)
    x = images(16)
    expected = logits_of(plain, x)
    assert fold_batchnorm(folded) == n_folded
    assert_same_logits(expected, logits_of(folded, x))
    bns = [c for _, c in folded.cells_and_names() if isinstance(c, nn.BatchNorm2d)]
    assert len(bns) == n_left
    assert not folded.trainable_params()
    names = [p.name for p in folded.get_parameters()]
    assert len(names) == len(set(names))


def test_teacher_engines_give_the_plain_logits(teacher_ckpt, tmp_path):
    pytest.importorskip("onnxruntime")
    from src.teacher.frozen import load_teacher
    path, x, expected = teacher_ckpt
    folder_before = sorted(os.listdir(os.path.dirname(path)))
    for engine, fold in (("mindspore", False), ("mindspore", True), ("onnxruntime", True)):
        teacher = load_teacher("ResNet", 8, 10, 1, path, engine=engine, fold_bn=fold)
        assert teacher.engine == engine
        got = teacher(x)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        if engine == "mindspore" and not fold:
            assert np.array_equal(got, expected)
        assert_same_logits(expected, got)
        # NumPy input, as the distillation loop passes it; any batch size (ONNX batch axis is free).
        assert_same_logits(expected[:5], teacher(x[:5]))
    # The ONNX file went to a private temporary folder, not next to the checkpoint.
    assert sorted(os.listdir(os.path.dirname(path))) == folder_before


@pytest.mark.parametrize("net, n_layer, width", [("VGG", 8, 1), ("WRN", 16, 1)])
def test_onnxruntime_teacher_other_networks(net, n_layer, width, tmp_path):
    pytest.importorskip("onnxruntime")
    from src.teacher.frozen import load_teacher
    model = trained_like(net, n_layer, width)
    path = str(tmp_path / "t.ckpt")
    save_atomic(model, path)
    model.set_train(False)
    x = images(8)
    teacher = load_teacher(net, n_layer, 10, width, path, engine="onnxruntime")
    assert_same_logits(logits_of(model, x), teacher(x))


def test_distillation_step_same_loss_with_fast_teacher(teacher_ckpt):
    """One compiled distillation step of a student, with each teacher: same loss parts and same
    updated weights, within float32 rounding."""
    pytest.importorskip("onnxruntime")
    import mindspore as ms
    from mindspore import nn

    from src.losses import DistillLoss
    from src.teacher.frozen import load_teacher
    from src.training.train_step import TrainStep
    path, x, _ = teacher_ckpt
    labels = (np.arange(len(x)) % 10).astype(np.int32)
    student = build_network("ResNet", 8, 10)
    start = {p.name: p.asnumpy().copy() for p in student.get_parameters()}
    opt = nn.Momentum(student.trainable_params(), learning_rate=0.05, momentum=0.9)
    step = TrainStep(student, DistillLoss(0.5, 4.0, 2.0, 1.0), opt)
    results = {}
    for engine, fold in (("mindspore", False), ("onnxruntime", True), ("mindspore", True)):
        for p in student.get_parameters():
            p.set_data(ms.Tensor(start[p.name]))
        for p in opt.moments:
            p.set_data(ms.Tensor(np.zeros(p.shape, np.float32)))
        teacher = load_teacher("ResNet", 8, 10, 1, path, engine=engine, fold_bn=fold)
        out = step(ms.Tensor(x), ms.Tensor(labels), ms.Tensor(teacher(x))).asnumpy()
        results[engine, fold] = out, {p.name: p.asnumpy().copy() for p in student.trainable_params()}
    (ref, ref_w) = results["mindspore", False]
    assert ref[2] > 0                                    # the KD term is there
    for key in (("onnxruntime", True), ("mindspore", True)):
        out, weights = results[key]
        np.testing.assert_allclose(out[:3], ref[:3], rtol=1e-5)      # loss, CE, KD
        assert out[3] == ref[3]                                      # correct predictions
        for name, w in weights.items():
            np.testing.assert_allclose(w, ref_w[name], rtol=1e-4, atol=1e-6)


def test_engine_choice(monkeypatch):
    import src.teacher.frozen as teacher
    assert teacher.resolve_engine("mindspore") == ("mindspore", None)
    assert teacher.resolve_engine("auto", "GPU") == ("mindspore", None)
    with pytest.raises(UserError, match="--teacher_engine"):
        teacher.resolve_engine("tensorrt")
    monkeypatch.setattr(teacher, "onnxruntime_available", lambda: True)
    assert teacher.resolve_engine("auto") == ("onnxruntime", None)
    monkeypatch.setattr(teacher, "onnxruntime_available", lambda: False)
    engine, note = teacher.resolve_engine("auto")
    assert engine == "mindspore" and "onnxruntime is not installed" in note
    with pytest.raises(UserError, match="not installed"):
        teacher.resolve_engine("onnxruntime")


def test_teacher_engine_flag():
    import run_distill
    args = run_distill.build_parser().parse_args([])
    assert args.teacher_engine == "auto"
    with pytest.raises(SystemExit) as err:
        run_distill.build_parser().parse_args(["--teacher_engine", "fast"])
    assert err.value.code == 2


def test_benchmark_flop_counts():
    """The benchmark's FLOPs per image (2 x multiply-adds) match the architectures' known figures."""
    spec = importlib.util.spec_from_file_location(
        "bench", os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks", "bench.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    gflop = {name: bench.forward_flops(name[0], build_network(*name, 100)) / 1e9
             for name in (("VGG", 8), ("ResNet", 14), ("ResNet", 110))}
    # VGG8: convs 95.9 M MACs + linear 51 k; ResNet110 about 253 M MACs; ResNet14 about 26.7 M.
    assert gflop["VGG", 8] == pytest.approx(0.1923, rel=2e-3)
    assert gflop["ResNet", 110] == pytest.approx(0.506, rel=5e-3)
    assert gflop["ResNet", 14] == pytest.approx(0.0534, rel=1e-2)
    result = bench.case_result({"img_per_s": 100.0, "peak_mb": 900.0, "gflop_per_img": 0.5, "step_ms": 1280.0},
                               100.0)
    line = bench.case_line("train_vgg8", result)
    assert line == ("case=train_vgg8 img_per_s=100 peak_mb=900 limit_img_per_s=200 fraction=0.5 "
                    "gflop_per_img=0.5 step_ms=1280")


def test_failed_onnx_export_falls_back_or_explains(teacher_ckpt, monkeypatch):
    """``auto`` must never cost a user the run: a network the exporter cannot handle runs in
    MindSpore (with a note); an explicit ``onnxruntime`` gets a one-line error instead."""
    pytest.importorskip("onnxruntime")
    import src.teacher.frozen as teacher
    from src.teacher.onnx_runtime import OnnxTeacherError
    path, x, expected = teacher_ckpt

    def broken_export(net):
        raise OnnxTeacherError("MindSpore could not export the teacher to ONNX (unsupported operator)")

    monkeypatch.setattr(teacher, "export_onnx_bytes", broken_export)
    notes = []
    fallen_back = teacher.load_teacher("ResNet", 8, 10, 1, path, engine="onnxruntime",
                                       on_onnx_failure=notes.append)
    assert fallen_back.engine == "mindspore"
    assert notes == ["MindSpore could not export the teacher to ONNX (unsupported operator): "
                     "the teacher runs in MindSpore"]
    assert_same_logits(expected, fallen_back(x))
    with pytest.raises(UserError, match="^--teacher_engine onnxruntime: MindSpore could not export"):
        teacher.load_teacher("ResNet", 8, 10, 1, path, engine="onnxruntime")


def test_teacher_threads(monkeypatch):
    from src import device
    from src.run.parallel import DataParallel
    from src.teacher import frozen as teacher
    from src.teacher.frozen import teacher_threads
    monkeypatch.setattr(teacher, "usable_cores", lambda: 8)
    assert teacher_threads(False, None) is None          # every core
    assert teacher_threads(True, None) == 1              # bit-identical logits
    assert teacher_threads(False, DataParallel(rank=0, size=2)) == 4
    assert teacher_threads(False, DataParallel(rank=1, size=16)) == 1
    # Windows and macOS have no sched_getaffinity.
    monkeypatch.undo()
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert device.usable_cores() == os.cpu_count()
