"""run_distill.py with the teacher cache, end to end: a run that fills an empty cache and one that
reads it end bit-identical to a run without it; where the cache cannot be used, one line."""
import hashlib
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ROOT

from src.errors import UserError
from src.teacher import cache as teacher_cache
from src.teacher.cache_run import cache_file, open_teacher_caches

TEACHER_NAME = "cifar100-ResNet8.ckpt"


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A ResNet8 teacher checkpoint (freshly initialised: the cache does not care how good it is)."""
    from src.nets.models import build_network
    from src.storage.checkpoint import save_atomic
    path = str(tmp_path_factory.mktemp("teacher") / TEACHER_NAME)
    save_atomic(build_network("ResNet", 8, 100), path)
    return path


def start(work, data_dir, teacher, epochs, cache):
    os.makedirs(work, exist_ok=True)
    argv = ["--data_dir", data_dir, "--download", "False", "--t_net", "ResNet", "--t_n_layer", "8",
            "--t_ckpt", teacher, "--net", "VGG", "--n_layer", "8", "--epoches", str(epochs),
            "--batch_size", "64", "--seed", "3", "--deterministic", "True", "--teacher_cache", cache,
            "--ckpt_dir", work, "--log_dir", work, "--ckpt_name", "s.ckpt"]
    out = open(os.path.join(work, "stdout"), "w")
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "run_distill.py"), *argv],
                            env=dict(os.environ, GLOG_v="3"), stdout=out, stderr=subprocess.STDOUT)


def finish(procs):
    for work, proc in procs.items():
        assert proc.wait(timeout=600) == 0, open(os.path.join(work, "stdout")).read()


def digest(work):
    with open(os.path.join(work, "s.ckpt"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def served(work):
    with open(os.path.join(work, "s.metrics.jsonl")) as f:
        return [json.loads(line).get("teacher_cache_served") for line in f]


def test_off_filling_and_reading_runs_end_bit_identical(cifar100_dir, teacher, tmp_path):
    w = {name: str(tmp_path / name) for name in ("off", "fill1", "read1", "fill2", "read2")}
    one, two = str(tmp_path / "cache1"), str(tmp_path / "cache2")
    finish({w["off"]: start(w["off"], cifar100_dir, teacher, 1, "off"),
            w["fill1"]: start(w["fill1"], cifar100_dir, teacher, 1, one),
            w["fill2"]: start(w["fill2"], cifar100_dir, teacher, 2, two)})
    finish({w["read1"]: start(w["read1"], cifar100_dir, teacher, 1, one),
            w["read2"]: start(w["read2"], cifar100_dir, teacher, 2, two)})
    assert digest(w["off"]) == digest(w["fill1"]) == digest(w["read1"])
    assert digest(w["fill2"]) == digest(w["read2"])
    assert served(w["off"]) == [None]
    assert served(w["fill1"]) == [0.0] and served(w["read1"]) == [1.0]
    assert served(w["fill2"])[0] == 0.0 and served(w["read2"]) == [1.0, 1.0]
    # 256 training images x 162 views + 100 test images; one epoch stores 256 + 100 of them.
    path = cache_file(one, teacher, "cifar100", "onnxruntime", "dataset")
    log = open(os.path.join(w["read1"], "student-kd-ats.log")).read()
    assert (f"# teacher cache {path}: 0.02 GB on disk, 356 of 41,572 teacher outputs stored (0.9%)"
            in log)
    assert sorted(os.listdir(one)) == sorted([os.path.basename(path), os.path.basename(path) + ".lock"])


class FakeTeacher:
    def __init__(self, engine):
        self.engine = engine

    def __call__(self, images):
        return np.zeros((len(images), 100), np.float32)


def run_args(tmp_path, teacher, cache):
    return SimpleNamespace(teacher_cache=cache, t_ckpt=teacher, dataset="cifar100", t_net="ResNet",
                           t_n_layer=8, t_width=1, t_input_norm="dataset", n_classes=100)


def open_caches(tmp_path, teacher, cache, engine="onnxruntime"):
    notes = []
    images = np.zeros((4, 3, 32, 32), np.uint8)
    caches = open_teacher_caches(run_args(tmp_path, teacher, cache), FakeTeacher(engine), "onednn",
                                 images, images[:2], notes.append)
    return caches, notes


def test_without_room_auto_runs_live_and_a_folder_is_refused(tmp_path, teacher, monkeypatch):
    monkeypatch.setattr(teacher_cache, "disk_free", lambda folder: 2 ** 20)
    caches, notes = open_caches(tmp_path, teacher, "auto")
    assert caches is None and len(notes) == 1
    assert notes[0].startswith("teacher cache not used: ") and notes[0].endswith(
        "needs 0.00 GB and 256 MB to spare; " f"{os.path.dirname(teacher)} has 0.00 GB free; the teacher runs live")
    with pytest.raises(UserError, match=rf"--teacher_cache {re.escape(str(tmp_path))}: .*needs 0\.00 GB"):
        open_caches(tmp_path, teacher, str(tmp_path))
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".logits")]


def test_auto_uses_no_cache_for_a_teacher_whose_logits_depend_on_the_batch(tmp_path, teacher):
    caches, notes = open_caches(tmp_path, teacher, "auto", engine="mindspore")
    assert caches is None and notes[0].startswith("teacher cache not used: the mindspore teacher's logits")
    caches, notes = open_caches(tmp_path, teacher, str(tmp_path), engine="mindspore")
    assert caches is not None and caches.train.store.path.endswith("-mindspore-dataset.logits")
    caches.train.store.close()


def test_a_retrained_teacher_replaces_its_stale_cache(tmp_path, teacher):
    import shutil
    mine = str(tmp_path / TEACHER_NAME)
    shutil.copy(teacher, mine)
    caches, notes = open_caches(tmp_path, mine, "auto")
    caches.train.store.close()
    with open(mine, "ab") as f:        # the teacher file's content changes, its name does not
        f.write(b"\0")
    caches, notes = open_caches(tmp_path, mine, "auto")
    caches.train.store.close()
    assert notes[0].endswith("made for another teacher, data or engine; replaced by an empty one")
    assert len([n for n in os.listdir(tmp_path) if n.endswith(".logits")]) == 1


def test_analyze_teacher_reads_the_identity_views_from_the_cache(cifar100_dir, teacher, tmp_path, capsys):
    import analyze_teacher
    common = ["--data_dir", cifar100_dir, "--download", "False", "--t_net", "ResNet", "--t_n_layer", "8",
              "--t_ckpt", teacher, "--split", "train", "--teacher_engine", "onnxruntime", "--taus", "1,4"]
    tables = []
    for run, cache in enumerate(("off", str(tmp_path / "cache"), str(tmp_path / "cache"))):
        analyze_teacher.main(common + ["--teacher_cache", cache, "--out_dir", str(tmp_path / f"out{run}")])
        tables.append((tmp_path / f"out{run}" / "teacher_stats.csv").read_text())
    assert tables[0] == tables[1] == tables[2]
    assert "256 of 41,572 teacher outputs stored" in capsys.readouterr().out   # the third run read them
