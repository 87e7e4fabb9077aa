"""The spec's command lines, end to end, as a user runs them (fresh processes, tiny CIFAR-100 folder)."""
import hashlib
import json
import re

import pytest
from conftest import run_entry

from src.nets.models import build_network
from src.storage.checkpoint import load_into

EPOCH_LINE = re.compile(r"^\[Epoch:(\d+)\] \[Loss:(\d+\.\d+)\] \[TrAcc:(\d\.\d+)\] \[TeAcc:(\d\.\d+)\]$")

TEACHER = ["--dataset", "cifar100", "--download", "False", "--n_classes", "100", "--net", "ResNet",
           "--n_layer", "14", "--net_name", "ResNet14", "--epoches", "1", "--lr", "0.03", "--momentum", "0.9",
           "--batch_size", "128", "--ckpt_dir", "./ckpts", "--log_dir", "./logs", "--log_name", "teacher.log",
           "--ckpt_name", "cifar100-ResNet14.ckpt"]


def kd_command(way, tp, t, log):
    return ["--dataset", "cifar100", "--download", "False", "--n_classes", "100", "--t_net", "ResNet",
            "--t_n_layer", "14", "--t_net_name", "ResNet14", "--net", "VGG", "--n_layer", "8", "--net_name",
            "VGG8", "--kd_way", way, "--lamb", "0.5", "--tp_tau", tp, "--t_tau", t, "--s_tau", "1.0",
            "--epoches", "1", "--lr", "0.03", "--momentum", "0.9", "--batch_size", "128", "--ckpt_dir",
            "./ckpts", "--log_dir", "./logs", "--log_name", log, "--ckpt_name",
            f"cifar100-ResNet14-VGG8-{way}.ckpt"]


@pytest.fixture(scope="module")
def teacher_run(cifar100_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("run")
    proc = run_entry("run_classify.py", "--data_dir", cifar100_dir, *TEACHER, cwd=work)
    assert proc.returncode == 0, proc.stderr
    return work, proc


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_classify_spec_command(teacher_run):
    work, proc = teacher_run
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[Epoch")]
    assert len(lines) == 1 and EPOCH_LINE.match(lines[0]) and lines[0].startswith("[Epoch:1]")
    assert proc.stderr.strip() == ""                       # no tracebacks, no framework chatter
    ckpts = work / "ckpts"
    for name in ("cifar100-ResNet14.ckpt", "cifar100-ResNet14-last.ckpt", "cifar100-ResNet14-best.ckpt",
                 "cifar100-ResNet14.run.json"):
        assert (ckpts / name).is_file(), name
    load_into(build_network("ResNet", 14, 100), str(ckpts / "cifar100-ResNet14.ckpt"))
    log = (work / "logs" / "teacher.log").read_text()
    assert "net: ResNet" in log and "n_layer: 14" in log and "# mindspore: 2.10" in log
    assert lines[0] in log.splitlines()
    (record,) = [json.loads(x) for x in (work / "logs" / "cifar100-ResNet14.metrics.jsonl").read_text().splitlines()]
    assert record["epoch"] == 1 and 0 <= record["test_acc"] <= 1 and record["loss"] > 0
    assert f"{record['test_acc']:.6f}" in lines[0]
    run = json.loads((ckpts / "cifar100-ResNet14.run.json").read_text())
    assert run["args"]["download"] is False and run["environment"]["mindspore"].startswith("2.10")


@pytest.mark.parametrize("way,tp,t", [("TS", "4.0", "4.0"), ("ATS", "4.0", "2.0")])
def test_run_distill_spec_command(teacher_run, cifar100_dir, way, tp, t):
    work, _ = teacher_run
    teacher = work / "ckpts" / "cifar100-ResNet14.ckpt"
    before = sha(teacher)
    log_name = f"student-kd-{way.lower()}.log"
    proc = run_entry("run_distill.py", "--data_dir", cifar100_dir, *kd_command(way, tp, t, log_name), cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert sha(teacher) == before
    assert any(EPOCH_LINE.match(line) for line in proc.stdout.splitlines())
    student = work / "ckpts" / f"cifar100-ResNet14-VGG8-{way}.ckpt"
    load_into(build_network("VGG", 8, 100), str(student))
    log = (work / "logs" / log_name).read_text()
    assert f"kd_way: {way}" in log and f"t_tau: {float(t)}" in log and "teacher ResNet14" in log
    metrics = json.loads((work / "logs" / f"cifar100-ResNet14-VGG8-{way}.metrics.jsonl").read_text())
    assert metrics["kd"] > 0 and metrics["ce"] > 0
    assert abs(metrics["loss"] - 0.5 * (metrics["ce"] + metrics["kd"])) < 1e-4
