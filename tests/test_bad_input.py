"""Bad input at every entry point: exit code 2, one line on stderr, no pre-existing file changed.

Most cases call the entry point's ``main`` in this process through ``run_main`` (an entry point in a
fresh process costs seconds of imports); a few run as real processes to check the whole path,
including that MindSpore itself prints nothing more.
"""
import errno
import hashlib
import importlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
from types import SimpleNamespace

import numpy as np
import pytest
from cifar_fixtures import make_archive, write_cifar100
from conftest import ROOT

ARCHIVE = "cifar-100-python.tar.gz"
# What the malicious pickle calls: os.system is posix.system on POSIX, nt.system on Windows.
SYSTEM = f"{os.system.__module__}.system"


class CallsSystem:
    """Unpickling this runs ``os.system(command)``: what a malicious CIFAR file would do."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_pickle(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def cifar_entry(n=8, data=None, labels=None):
    data = np.zeros((n, 3072), np.uint8) if data is None else data
    return {b"data": data, b"fine_labels": list(range(n)) if labels is None else labels}


def bad_data(root, name, train=None, raw=None):
    """``root/name/cifar-100-python`` with a valid test file and a bad ``train`` (object or bytes)."""
    folder = os.path.join(root, name, "cifar-100-python")
    write_pickle(os.path.join(folder, "test"), cifar_entry())
    if raw is not None:
        with open(os.path.join(folder, "train"), "wb") as f:
            f.write(raw)
    else:
        write_pickle(os.path.join(folder, "train"), train)
    return os.path.dirname(folder)


def tar_with(path, members):
    """A tar.gz from (name, bytes or None for a symlink) pairs."""
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            if payload is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace of good and bad files; every case must leave all of them unchanged."""
    from src.nets.models import build_network
    from src.storage.checkpoint import save_atomic
    root = str(tmp_path_factory.mktemp("bad_input"))

    def p(*parts):
        return os.path.join(root, *parts)

    write_cifar100(p("data"), n_train=64, n_test=20, n_classes=10)
    os.makedirs(p("ckpts"))
    teacher = build_network("ResNet", 8, 100)
    save_atomic(teacher, p("ckpts", "cifar100-ResNet8.ckpt"))
    save_atomic(build_network("ResNet", 14, 100), p("ckpts", "resnet14.ckpt"))
    with open(p("ckpts", "cifar100-ResNet8.ckpt"), "rb") as f:
        whole = f.read()
    for name, content in (("empty.ckpt", b""), ("garbage.ckpt", b"not a checkpoint\n" * 20),
                          ("truncated.ckpt", whole[:len(whole) // 3])):
        with open(p("ckpts", name), "wb") as f:
            f.write(content)
    # Training states (what -last.ckpt holds) made with other settings, or lacking the optimizer.
    same = {"dataset": "cifar100", "n_classes": 100, "net": "ResNet", "n_layer": 8, "width": 1,
            "epoches": 1, "lr": 0.03, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 32,
            "scheduler": "step", "seed": 0}
    state = {"epoch": 1, "best_acc": 0.1, "best_epoch": 1, "history": []}
    save_atomic(teacher, p("ckpts", "other-last.ckpt"),
                {**state, "args": {**same, "epoches": 5, "lr": 0.1}})
    save_atomic(teacher, p("ckpts", "no-optimizer-last.ckpt"), {**state, "args": same})
    save_atomic(build_network("ResNet", 14, 100), p("ckpts", "resnet14-last.ckpt"), {**state, "args": same})
    with open(p("a_file"), "w") as f:
        f.write("a regular file where a folder is expected\n")

    marker = p("PWNED")
    data = {
        "empty": bad_data(root, "empty", raw=b""),
        "truncated": bad_data(root, "truncated", raw=pickle.dumps(cifar_entry(), protocol=2)[:300]),
        "not_pickle": bad_data(root, "not_pickle", raw=b"\x89PNG\r\n\x1a\n not a pickle"),
        "not_dict": bad_data(root, "not_dict", train=[1, 2, 3]),
        "no_labels": bad_data(root, "no_labels", train={b"data": np.zeros((8, 3072), np.uint8)}),
        "shape": bad_data(root, "shape", train=cifar_entry(data=np.zeros((8, 1024), np.uint8))),
        "dtype": bad_data(root, "dtype", train=cifar_entry(data=np.zeros((8, 3072), np.float32))),
        "count": bad_data(root, "count", train=cifar_entry(labels=[0, 1, 2])),
        "label_high": bad_data(root, "label_high", train=cifar_entry(labels=[0] * 7 + [150])),
        "label_negative": bad_data(root, "label_negative", train=cifar_entry(labels=[-1] + [0] * 7)),
        "malicious": bad_data(root, "malicious",
                              train={b"data": CallsSystem(f"touch {marker}"), b"fine_labels": [0]}),
    }
    # Archives "downloaded" earlier into a data folder (prepare_dataset verifies and extracts them).
    archives = {}
    for name, members in (("corrupt", None), ("unsafe", [("../escaped.txt", b"x")]),
                          ("absolute", [("/tmp/escaped.txt", b"x")]),
                          ("symlink", [("cifar-100-python/train", None)]),
                          ("wrong_content", [("readme.txt", b"no data in here")])):
        os.makedirs(p(f"arch_{name}"))
        path = p(f"arch_{name}", ARCHIVE)
        if members is None:
            good = make_archive(write_cifar100(p("arch_src"), n_train=8, n_test=4), p("arch_src.tgz"))
            with open(good, "rb") as f:
                payload = f.read()
            with open(path, "wb") as f:
                f.write(payload[:len(payload) // 2])
        else:
            tar_with(path, members)
        archives[name] = p(f"arch_{name}")
    os.makedirs(p("arch_md5"))
    with open(p("arch_md5", ARCHIVE), "wb") as f:
        f.write(b"an interrupted download")
    archives["md5"] = p("arch_md5")
    return SimpleNamespace(root=root, p=p, data=data, archives=archives, marker=marker)


def snapshot(root):
    hashes = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                hashes[path] = hashlib.sha256(f.read()).hexdigest()
    return hashes


def call(script, argv, capsys, monkeypatch):
    """``script``'s main(argv) under run_main, as its process would run it: (exit code, stderr)."""
    from src.errors import run_main
    module = importlib.import_module(script[:-len(".py")])
    monkeypatch.setattr(sys, "argv", [script])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_main(module.main, [str(a) for a in argv])
    return exit_info.value.code, capsys.readouterr().err


def check_refused(ws, script, argv, expected, capsys, monkeypatch):
    before = snapshot(ws.root)
    code, err = call(script, argv, capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: "), err
    assert expected in lines[0], lines[0]
    after = snapshot(ws.root)
    assert {k: after.get(k) for k in before} == before, "a pre-existing file changed"
    return lines[0]


def classify_argv(ws, **flags):
    base = {"data_dir": ws.p("data"), "download": "False", "net": "ResNet", "n_layer": 8, "epoches": 1,
            "batch_size": 32, "seed": 0, "ckpt_dir": ws.p("out"), "log_dir": ws.p("out")}
    base.update(flags)
    return [x for k, v in base.items() if v is not None for x in (f"--{k}", v)]


def distill_argv(ws, **flags):
    return classify_argv(ws, **{"t_net": "ResNet", "t_n_layer": 8, "t_net_name": "ResNet8",
                                "t_ckpt": ws.p("ckpts", "cifar100-ResNet8.ckpt"),
                                "teacher_engine": "mindspore", **flags})


# (flags, expected part of the message); flags are added to a valid run_classify.py command.
FLAG_CASES = [
    ({"dataset": "imagenet"}, "argument --dataset: invalid choice: 'imagenet'"),
    ({"net": "AlexNet"}, "argument --net: invalid choice: 'AlexNet'"),
    ({"n_layer": 9}, "--net ResNet with n_layer 9 is not available"),
    ({"n_layer": -8}, "argument --n_layer: expected a positive number, got '-8'"),
    ({"net": "WRN", "n_layer": 20}, "--net WRN with n_layer 20 is not available"),
    ({"width": 0}, "argument --width: expected a positive number"),
    ({"epoches": 0}, "argument --epoches: expected a positive number, got '0'"),
    ({"epoches": -3}, "argument --epoches: expected a positive number"),
    ({"epoches": 2.5}, "argument --epoches: expected an integer, got '2.5'"),
    ({"epoches": "ten"}, "argument --epoches: expected an integer, got 'ten'"),
    ({"batch_size": 0}, "argument --batch_size: expected a positive number"),
    ({"eval_batch_size": -1}, "argument --eval_batch_size: expected a positive number"),
    ({"lr": 0}, "argument --lr: expected a positive number, got '0'"),
    ({"lr": -0.1}, "argument --lr: expected a positive number"),
    ({"lr": "nan"}, "argument --lr: expected a positive number, got 'nan'"),
    ({"lr": "inf"}, "argument --lr: expected a positive number, got 'inf'"),
    ({"momentum": -0.9}, "argument --momentum: expected a non-negative number"),
    ({"weight_decay": -1}, "argument --weight_decay: expected a non-negative number"),
    ({"download": "notabool"}, "argument --download: expected True or False, got 'notabool'"),
    ({"deterministic": "maybe"}, "argument --deterministic: expected True or False"),
    ({"seed": -1}, "argument --seed: expected an integer in [0, 2**32), got '-1'"),
    ({"seed": 2 ** 32}, "argument --seed: expected an integer in [0, 2**32)"),
    ({"seed": "abc"}, "argument --seed: expected an integer, got 'abc'"),
    ({"scheduler": "cosine"}, "argument --scheduler: invalid choice: 'cosine'"),
    ({"device_target": "TPU"}, "argument --device_target: invalid choice: 'TPU'"),
    ({"n_classes": 10}, "--n_classes 10: cifar100 has 100 classes"),
    ({"n_classes": 0}, "argument --n_classes: expected a positive number"),
    ({"no_such_flag": 1}, "unrecognized arguments: --no_such_flag 1"),
    ({"ckpt_name": "sub/r8.ckpt"}, "--ckpt_name 'sub/r8.ckpt': expected a file name without a folder"),
    ({"log_name": "../r8.log"}, "--log_name '../r8.log': expected a file name without a folder"),
]


@pytest.mark.parametrize("flags,expected", FLAG_CASES, ids=[next(iter(f)) + "=" + str(next(iter(f.values())))
                                                         for f, _ in FLAG_CASES])
def test_bad_flag_value(ws, flags, expected, capsys, monkeypatch):
    check_refused(ws, "run_classify.py", classify_argv(ws, **flags), expected, capsys, monkeypatch)


# (data folder key, expected part of the message)
DATA_CASES = [
    ("empty", "train: not a readable CIFAR pickle (Ran out of input)"),
    ("truncated", "train: not a readable CIFAR pickle"),
    ("not_pickle", "train: not a readable CIFAR pickle"),
    ("not_dict", "train: expected a dict with keys b'data' and b'fine_labels'"),
    ("no_labels", "train: expected a dict with keys b'data' and b'fine_labels'"),
    ("shape", "train: b'data' is uint8 (8, 1024), expected uint8 (N, 3072)"),
    ("dtype", "train: b'data' is float32 (8, 3072), expected uint8 (N, 3072)"),
    ("count", "train: 3 labels for 8 images"),
    ("label_high", "train: label 150 outside 0..99 (--n_classes 100)"),
    ("label_negative", "train: label -1 outside 0..99 (--n_classes 100)"),
    ("malicious", f"train: not a readable CIFAR pickle (refusing to load {SYSTEM})"),
]


@pytest.mark.parametrize("key,expected", DATA_CASES, ids=[k for k, _ in DATA_CASES])
def test_bad_data_file(ws, key, expected, capsys, monkeypatch):
    check_refused(ws, "run_classify.py", classify_argv(ws, data_dir=ws.data[key]), expected,
                  capsys, monkeypatch)
    assert not os.path.exists(ws.marker)    # the malicious pickle ran nothing


def test_malicious_pickle_runs_nothing(ws):
    from src.data import load_pickle
    from src.errors import UserError
    path = os.path.join(ws.data["malicious"], "cifar-100-python", "train")
    with pytest.raises(UserError, match=f"refusing to load {SYSTEM}"):
        load_pickle(path)
    assert not os.path.exists(ws.marker)
    with open(path, "rb") as f:                     # the file really would have run the command
        assert b"system" in f.read()


def with_archive_md5(monkeypatch, archive):
    """Make ``archive`` the expected official one, so the checks after the md5 are reached."""
    import dataclasses

    from src import data
    with open(archive, "rb") as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    monkeypatch.setitem(data.DATASETS, "cifar100", dataclasses.replace(data.DATASETS["cifar100"],
                                                                       archive_md5=md5))


ARCHIVE_CASES = [
    ("md5", False, "does not match the expected eb9058c3a382ffc7106e4002c42a8d85 (truncated or corrupt; "
                   "delete it to download again, or replace it)"),
    ("corrupt", True, f"{ARCHIVE}: not a readable tar.gz archive"),
    ("unsafe", True, f"{ARCHIVE}: unsafe member '../escaped.txt' would land outside"),
    ("absolute", True, f"{ARCHIVE}: unsafe member '/tmp/escaped.txt' would land outside"),
    ("symlink", True, f"{ARCHIVE}: unsupported member 'cifar-100-python/train' (only files and folders)"),
    ("wrong_content", True, f"{ARCHIVE}: extracted, but cifar-100-python/ with the expected files is not in it"),
]


@pytest.mark.parametrize("key,md5_ok,expected", ARCHIVE_CASES, ids=[k for k, _, _ in ARCHIVE_CASES])
def test_bad_archive(ws, key, md5_ok, expected, capsys, monkeypatch):
    folder = ws.archives[key]
    if md5_ok:
        with_archive_md5(monkeypatch, os.path.join(folder, ARCHIVE))
    check_refused(ws, "run_classify.py", classify_argv(ws, data_dir=folder, download="True"), expected,
                  capsys, monkeypatch)
    assert os.path.isfile(os.path.join(folder, ARCHIVE))       # the user's archive is kept
    assert not os.path.exists(os.path.join(os.path.dirname(folder), "escaped.txt"))
    assert not os.path.exists("/tmp/escaped.txt")


def test_missing_data_without_download(ws, capsys, monkeypatch):
    check_refused(ws, "run_classify.py", classify_argv(ws, data_dir=ws.p("nothing_here")),
                  "no cifar-100-python/ with train, test found and --download is False", capsys, monkeypatch)


@pytest.mark.parametrize("flag", ["ckpt_dir", "log_dir"])
@pytest.mark.parametrize("where", ["file", "below_file"])
def test_output_folder_not_writable(ws, flag, where, capsys, monkeypatch):
    # Tests run as root, for whom chmod blocks nothing: a regular file stands where a folder must be.
    path = ws.p("a_file") if where == "file" else ws.p("a_file", "sub")
    # The same words on every platform (Windows would say "path not found", POSIX "Not a directory").
    reason = "a file is in the way" if where == "file" else f"the file {ws.p('a_file')} is in the way"
    check_refused(ws, "run_classify.py", classify_argv(ws, **{flag: path}),
                  f"--{flag} {path}: {reason} (expected a folder)", capsys, monkeypatch)


RESUME_CASES = [
    ("missing.ckpt", "--resume {path}: no such checkpoint"),
    ("empty.ckpt", "--resume checkpoint {path} is an empty file"),
    ("garbage.ckpt", "--resume checkpoint {path} is not a readable MindSpore checkpoint (truncated, "
                     "corrupt or another format)"),
    ("truncated.ckpt", "--resume checkpoint {path} is not a readable MindSpore checkpoint"),
    ("cifar100-ResNet8.ckpt", "--resume {path}: a plain network checkpoint, not a training state "
                              "(use the run's *-last.ckpt)"),
    ("other-last.ckpt", "--resume {path}: it was trained with other settings: --epoches 5 (now 1), "
                        "--lr 0.1 (now 0.03)"),
    ("resnet14-last.ckpt", "--resume checkpoint {path} does not fit the network: unexpected: "
                           "layer1.1.conv1.weight, layer1.1.bn1.moving_mean, layer1.1.bn1.moving_variance"),
    ("no-optimizer-last.ckpt", "--resume {path}: optimizer state missing (global_step"),
]


@pytest.mark.parametrize("name,expected", RESUME_CASES, ids=[n for n, _ in RESUME_CASES])
def test_bad_resume(ws, name, expected, capsys, monkeypatch):
    path = ws.p("ckpts", name)
    check_refused(ws, "run_classify.py", classify_argv(ws, resume=path), expected.format(path=path),
                  capsys, monkeypatch)


def test_disk_full_keeps_previous_checkpoint(ws, capsys, monkeypatch):
    """The disk fills up in epoch 2: one line, and epoch 1's state is still there to resume from."""
    import mindspore as ms

    from src.storage.checkpoint import read_checkpoint
    real_save, calls = ms.save_checkpoint, []

    def save_until_full(params, path, *args, **kwargs):
        calls.append(path)
        if len(calls) <= 2:                          # epoch 1: -best and -last
            return real_save(params, path, *args, **kwargs)
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ms, "save_checkpoint", save_until_full)
    out = ws.p("full_disk")
    line = check_refused(ws, "run_classify.py", classify_argv(ws, epoches=2, ckpt_dir=out, log_dir=out,
                                                             ckpt_name="r8"),
                         "(No space left on device); the previous file, if any, is unchanged",
                         capsys, monkeypatch)
    assert line.startswith(f"run_classify.py: error: cannot write the checkpoint {os.path.join(out, 'r8-')}")
    monkeypatch.undo()
    assert read_checkpoint(os.path.join(out, "r8-last.ckpt"))[1]["epoch"] == 1
    assert sorted(os.listdir(out)) == ["r8-best.ckpt", "r8-last.ckpt", "r8.metrics.jsonl", "r8.run.json",
                                       "student-nokd.log"]


DISTILL_CASES = [
    ({"t_ckpt": "{ckpts}/missing.ckpt"}, "teacher checkpoint --t_ckpt {ckpts}/missing.ckpt not found"),
    # A folder typed with "/" (as in Git Bash): the teacher's default path continues with "/", on
    # Windows too, where the temporary root itself is written with backslashes.
    ({"t_ckpt": None, "ckpt_dir": "{root}/no_teacher_here"},
     "teacher checkpoint --t_ckpt {root}/no_teacher_here/cifar100-ResNet8.ckpt not found"),
    ({"t_ckpt": "{ckpts}/empty.ckpt"}, "teacher checkpoint --t_ckpt {ckpts}/empty.ckpt is an empty file"),
    ({"t_ckpt": "{ckpts}/garbage.ckpt"}, "teacher checkpoint --t_ckpt {ckpts}/garbage.ckpt is not a "
                                         "readable MindSpore checkpoint"),
    ({"t_ckpt": "{ckpts}/truncated.ckpt"}, "is not a readable MindSpore checkpoint"),
    ({"t_ckpt": "{ckpts}/resnet14.ckpt"}, "teacher checkpoint --t_ckpt {ckpts}/resnet14.ckpt does not fit "
                                          "the network: unexpected: layer1.1.conv1.weight"),
    ({"t_net": "VGG", "t_n_layer": 8}, "does not fit the network: missing: block0.0.weight"),
    ({"t_net": "VGG", "t_n_layer": 7}, "--t_net VGG with n_layer 7 is not available"),
    ({"t_net": "DenseNet"}, "argument --t_net: invalid choice: 'DenseNet'"),
    ({"kd_way": "other"}, "argument --kd_way: invalid choice: 'other'"),
    ({"tp_tau": 0}, "argument --tp_tau: expected a positive number, got '0'"),
    ({"t_tau": -1}, "argument --t_tau: expected a positive number, got '-1'"),
    ({"s_tau": "nan"}, "argument --s_tau: expected a positive number, got 'nan'"),
    ({"lamb": 1.5}, "--lamb 1.5: expected a value in [0, 1]"),
    ({"lamb": -0.1}, "--lamb -0.1: expected a value in [0, 1]"),
    ({"lamb": "nan"}, "--lamb nan: expected a value in [0, 1]"),
    ({"teacher_engine": "tensorrt"}, "argument --teacher_engine: invalid choice: 'tensorrt'"),
    ({"ckpt_dir": "{ckpts}", "ckpt_name": "cifar100-ResNet8.ckpt"},
     "--ckpt_name cifar100-ResNet8.ckpt: the student would overwrite the teacher checkpoint"),
    ({"ckpt_dir": "{ckpts}", "ckpt_name": "cifar100-ResNet8"}, "the student would overwrite the teacher"),
    ({"resume": "{ckpts}/other-last.ckpt"}, "it was trained with other settings: --epoches 5 (now 1), "
                                            "--lr 0.1 (now 0.03), --t_net None (now ResNet), --t_n_layer None (now 8) (+"),
]


@pytest.mark.parametrize("flags,expected", DISTILL_CASES,
                         ids=[f"{k}={v}" for f, _ in DISTILL_CASES for k, v in list(f.items())[-1:]])
def test_bad_distill_input(ws, flags, expected, capsys, monkeypatch):
    names = {"ckpts": ws.p("ckpts"), "root": ws.root}
    flags = {k: v.format(**names) if isinstance(v, str) else v for k, v in flags.items()}
    check_refused(ws, "run_distill.py", distill_argv(ws, **flags), expected.format(**names),
                  capsys, monkeypatch)


# The other entry points: a few representative bad inputs each (where the script exists).
OTHER_CASES = [
    ("export.py", ["--net", "ResNet", "--n_layer", 8, "--ckpt_dir", "{ckpts}", "--ckpt_name", "missing.ckpt"],
     "{ckpts}{sep}missing.ckpt not found"),
    ("export.py", ["--net", "ResNet", "--n_layer", 8, "--ckpt_dir", "{ckpts}", "--ckpt_name", "garbage.ckpt"],
     "is not a readable MindSpore checkpoint"),
    ("export.py", ["--net", "ResNet", "--n_layer", 14, "--ckpt_dir", "{ckpts}", "--ckpt_name",
                   "cifar100-ResNet8.ckpt"], "does not fit the network: missing: layer1.1.conv1.weight"),
    ("export.py", ["--file_format", "TFLITE"], "argument --file_format: invalid choice: 'TFLITE'"),
    ("predict.py", ["--mindir", "{root}/missing.mindir"], "missing.mindir"),
    ("predict.py", ["--mindir", "{ckpts}/garbage.ckpt"], "garbage.ckpt"),
    ("predict.py", ["--mindir", "x.mindir", "--topk", 0], "argument --topk: expected a positive number"),
    ("convert_torch.py", ["--pth", "{root}/missing.pth", "--net", "ResNet", "--n_layer", 8,
                          "--ckpt_dir", "{root}/converted"], "missing.pth"),
    ("convert_torch.py", ["--pth", "{ckpts}/garbage.ckpt", "--net", "ResNet", "--n_layer", 8,
                          "--ckpt_dir", "{root}/converted"], "garbage.ckpt"),
    ("convert_torch.py", ["--pth", "x.pth", "--net", "ResNet", "--n_layer", 8, "--overwrite", "perhaps"],
     "argument --overwrite: expected True or False"),
    ("analyze_teacher.py", ["--t_ckpt", "{ckpts}/missing.ckpt"], "{ckpts}/missing.ckpt not found"),
    ("analyze_teacher.py", ["--t_ckpt", "{ckpts}/cifar100-ResNet8.ckpt", "--t_n_layer", 8,
                            "--taus", "1,-2"], "argument --taus"),
    ("sweep.py", ["--data_dir", "{root}/data", "--t_n_layer", 8, "--t_ckpt", "{ckpts}/missing.ckpt"],
     "{ckpts}/missing.ckpt not found"),
    ("plot_runs.py", ["{root}/missing.metrics.jsonl", "--out", "{root}/fig.png"], "missing.metrics.jsonl"),
]


@pytest.mark.parametrize("script,argv,expected", OTHER_CASES,
                         ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(OTHER_CASES)])
def test_other_entry_points(ws, script, argv, expected, capsys, monkeypatch):
    if not os.path.isfile(os.path.join(ROOT, script)):
        pytest.skip(f"{script} does not exist")
    # {sep}: where the entry point joins a folder given with the platform's separator and a file name.
    names = {"ckpts": ws.p("ckpts"), "root": ws.root, "sep": os.sep}
    argv = [a.format(**names) if isinstance(a, str) else a for a in argv]
    check_refused(ws, script, argv, expected.format(**names), capsys, monkeypatch)


def test_real_processes(ws):
    """A few cases as real processes: exactly one line on stderr (MindSpore adds nothing), exit 2."""
    cases = [
        ("run_classify.py", classify_argv(ws, epoches=0), "argument --epoches: expected a positive number"),
        # (their own outputs: on the same ones, a run started while another holds them stops there)
        ("run_classify.py", classify_argv(ws, data_dir=ws.data["malicious"], ckpt_name="malicious.ckpt"),
         f"refusing to load {SYSTEM}"),
        ("run_classify.py", classify_argv(ws, device_target="GPU", ckpt_name="gpu.ckpt"),
         "--device_target GPU: this MindSpore installation cannot use it"),
        ("run_distill.py", distill_argv(ws, t_ckpt=ws.p("ckpts", "resnet14.ckpt")),
         "does not fit the network: unexpected: layer1.1.conv1.weight"),
    ]
    before = snapshot(ws.root)
    env = dict(os.environ, GLOG_v="3")
    procs = [subprocess.Popen([sys.executable, os.path.join(ROOT, script), *map(str, argv)], env=env,
                              cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for script, argv, _ in cases]
    for (script, _, expected), proc in zip(cases, procs):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{script}: error: ") and expected in lines[0], err
    assert not os.path.exists(ws.marker)
    assert not os.path.exists(os.path.join(ws.root, "rank_0"))     # no compile-failure debris
    after = snapshot(ws.root)
    assert {k: after.get(k) for k in before} == before
