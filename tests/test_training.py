"""The training loop in-process: learning happens, and distillation never touches the teacher."""
import numpy as np

import run_classify
import run_distill
from src.data import BatchLoader, Normalizer
from src.nets.models import build_network
from src.run.config import resolve_run
from src.run.log import RunLog
from src.teacher.frozen import Teacher
from src.training.classify import Classify
from src.training.distill import Distill


def learnable(n, classes=4, seed=0):
    """Each class is a distinct colour plus noise: a small net separates them in a few epochs."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % classes).astype(np.int32)
    colours = np.array([[220, 30, 30], [30, 220, 30], [30, 30, 220], [220, 220, 30]])[:classes]
    x = colours[y][:, :, None, None] * 0.6 + rng.integers(0, 100, size=(n, 3, 32, 32))
    return x.clip(0, 255).astype(np.uint8), y


def loaders(batch=32):
    norm = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x, y = learnable(128)
    xt, yt = learnable(64, seed=1)
    return BatchLoader(x, y, batch, norm, train=True, seed=0), BatchLoader(xt, yt, 64, norm, train=False)


def trainer_args(module, tmp_path, *extra):
    flags = ["--n_classes", "4", "--ckpt_dir", str(tmp_path / "ckpts"), "--log_dir", str(tmp_path / "logs"),
             "--seed", "0", *extra]
    if module is run_distill:
        # The trainer is handed its teacher: the checkpoint is only checked to exist.
        (tmp_path / "teacher.ckpt").write_bytes(b"")
        flags += ["--t_ckpt", str(tmp_path / "teacher.ckpt"), "--ckpt_name", "student.ckpt"]
    config = resolve_run(module.build_parser().parse_args(flags), distill=module is run_distill)
    return config.args, config.files


def test_classify_loss_falls_and_accuracy_rises(tmp_path):
    args, out = trainer_args(run_classify, tmp_path, "--net", "ResNet", "--n_layer", "8", "--epoches", "4",
                             "--lr", "0.05", "--batch_size", "32")
    train, test = loaders()
    net = build_network("ResNet", 8, 4)
    trainer = Classify(net, train, test, args, out, RunLog(out.log, out.metrics, out.record))
    history = trainer.fit()
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]
    assert history[-1]["train_acc"] > history[0]["train_acc"] and history[-1]["train_acc"] > 0.7
    assert history[-1]["test_acc"] > 0.6                      # chance is 0.25
    assert all(h["kd"] == 0 and h["ce"] == h["loss"] for h in history)


def test_distillation_leaves_teacher_identical_and_trains_student(tmp_path):
    args, out = trainer_args(run_distill, tmp_path, "--epoches", "1", "--batch_size", "32",
                             "--kd_way", "ATS", "--tp_tau", "4", "--t_tau", "2")
    train, test = loaders()
    teacher_net = build_network("ResNet", 8, 4)
    teacher_net.set_train(True)      # even a teacher handed over in train mode must run in eval mode
    before = {p.name: p.asnumpy().copy() for p in teacher_net.get_parameters()}
    student = build_network("VGG", 8, 4)
    s_before = {p.name: p.asnumpy().copy() for p in student.get_parameters()}
    trainer = Distill(student, Teacher(teacher_net), train, test, args, out,
                      RunLog(out.log, out.metrics, out.record))
    history = trainer.fit()
    for p in teacher_net.get_parameters():
        assert np.array_equal(p.asnumpy(), before[p.name]), p.name
    changed = [p.name for p in student.get_parameters() if not np.array_equal(p.asnumpy(), s_before[p.name])]
    assert len(changed) == len(s_before)            # weights and BN statistics all moved
    rec = history[0]
    assert rec["kd"] > 0 and abs(rec["loss"] - (0.5 * rec["ce"] + 0.5 * rec["kd"])) < 1e-4
