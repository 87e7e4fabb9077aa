"""MindIR/ONNX export, inference with the exported model (predict.py), and the spec's scripts/."""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from cifar_fixtures import write_cifar100
from conftest import ROOT, run_entry
from wine import NO_BASH, UNDER_WINE

ACCURACY_LINE = re.compile(r"^(\S+): top-1 (\d\.\d{4}), top-5 (\d\.\d{4}) over (\d+) test images$")


@pytest.fixture(scope="module")
def trained(cifar100_dir, tmp_path_factory):
    """A VGG8 trained one epoch on the tiny data (10 classes used: well above chance), as run_classify.py saves it."""
    ckpt_dir = tmp_path_factory.mktemp("ckpts")
    proc = run_entry("run_classify.py", "--data_dir", cifar100_dir, "--download", "False",
                     "--epoches", "1", "--batch_size", "64", "--eval_batch_size", "100", "--seed", "1",
                     "--ckpt_dir", ckpt_dir, "--log_dir", ckpt_dir, "--ckpt_name", "cifar100-VGG8.ckpt")
    assert proc.returncode == 0, proc.stderr
    return str(ckpt_dir / "cifar100-VGG8.ckpt")


def load_net(ckpt):
    from src.deploy.export import load_trained
    return load_trained("VGG", 8, 100, 1, ckpt)


def test_mindir_logits_equal_checkpoint_net_at_any_batch_size(trained, tmp_path):
    import mindspore as ms

    from src.deploy.export import export_network
    from src.deploy.inference import MindIRModel
    net = load_net(trained)
    path = str(tmp_path / "vgg8_mindir.mindir")
    export_network(net, path, "MINDIR")
    model = MindIRModel(path)
    rng = np.random.default_rng(0)
    for batch in (1, 7):
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
        expected = net(ms.Tensor(x)).asnumpy()
        got = model(x)
        assert got.shape == (batch, 100)
        assert np.abs(got - expected).max() < 1e-5
    assert os.listdir(tmp_path) == ["vgg8_mindir.mindir"]          # no temporary file left


def test_onnx_export_matches_in_onnxruntime(trained, tmp_path):
    import mindspore as ms
    import onnxruntime as ort

    from src.deploy.export import export_network
    net = load_net(trained)
    path = str(tmp_path / "vgg8.onnx")
    export_network(net, path, "ONNX")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "images" and inp.shape[1:] == [3, 32, 32] and not isinstance(inp.shape[0], int)
    rng = np.random.default_rng(1)
    for batch in (1, 5):
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
        got = session.run(None, {"images": x})[0]
        assert np.abs(got - net(ms.Tensor(x)).asnumpy()).max() < 1e-5


def test_export_cli_names_and_replaces_atomically(trained, tmp_path, capsys, monkeypatch):
    import mindspore as ms

    import export
    ckpt_dir = tmp_path / "ckpts"
    ckpt_dir.mkdir()
    # run_distill.py's student name, found from --t_net_name/--kd_way.
    shutil.copy(trained, ckpt_dir / "cifar100-ResNet14-VGG8-TS.ckpt")
    argv = ["--ckpt_dir", str(ckpt_dir), "--t_net_name", "ResNet14", "--kd_way", "TS"]
    export.main(argv)
    out = ckpt_dir / "cifar100-ResNet14-VGG8-TS_mindir.mindir"
    assert capsys.readouterr().out.splitlines() == [str(out)]
    before = out.read_bytes()
    export.main(argv)                                   # replaces its own (read-only) file, keeping it
    printed = capsys.readouterr()
    assert printed.out.splitlines() == [str(out)]
    (kept,) = os.listdir(ckpt_dir / "replaced")
    assert printed.err.splitlines() == [f"kept the earlier {out.name} in {ckpt_dir / 'replaced' / kept}"]
    assert (ckpt_dir / "replaced" / kept / out.name).read_bytes() == before
    first = out.read_bytes()

    def failing_export(net, *inputs, file_name, file_format):
        with open(file_name, "wb") as f:
            f.write(b"partial")
        raise RuntimeError("disk full")
    monkeypatch.setattr(ms, "export", failing_export)
    with pytest.raises(RuntimeError):
        export.main(argv)
    assert out.read_bytes() == first                    # the previous export survives a failed one
    assert sorted(os.listdir(ckpt_dir)) == ["cifar100-ResNet14-VGG8-TS.ckpt", out.name, "replaced"]
    assert os.listdir(ckpt_dir / "replaced") == [kept]          # the failed export kept nothing


def test_export_path_with_a_space(trained, tmp_path, monkeypatch):
    """MindSpore's exporters refuse a space in the file name: a path relative to the working folder
    avoids one higher up (Windows user folders); a space below it is a one-line UserError."""
    from src.deploy.export import export_network
    from src.errors import UserError
    net = load_net(trained)
    home = tmp_path / "First Last"
    (home / "ckpts").mkdir(parents=True)
    monkeypatch.chdir(home)
    export_network(net, str(home / "ckpts" / "a_mindir.mindir"))
    assert (home / "ckpts" / "a_mindir.mindir").is_file()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="no spaces"):
        export_network(net, str(home / "ckpts" / "b_mindir.mindir"))
    assert sorted(os.listdir(home / "ckpts")) == ["a_mindir.mindir"]


def test_predict_reproduces_evaluate_accuracy(trained, cifar100_dir, tmp_path):
    from src.data import DATASETS, BatchLoader, Normalizer, find_dataset_dir, load_split
    from src.deploy.export import export_network
    from src.training.evaluate import cell_forward, evaluate
    net = load_net(trained)
    path = str(tmp_path / "cifar100-VGG8_mindir.mindir")
    export_network(net, path, "MINDIR")
    info = DATASETS["cifar100"]
    x, y = load_split(find_dataset_dir(cifar100_dir, info), "cifar100", "test")
    expected = evaluate(cell_forward(net), BatchLoader(x, y, 30, Normalizer(info.mean, info.std), train=False), (1, 5))
    assert 0.2 < expected[0] < 1.0                      # a discriminating check, not chance or perfect
    proc = run_entry("predict.py", "--mindir", path, "--data_dir", cifar100_dir, "--download", "False",
                     "--batch_size", "30")
    assert proc.returncode == 0, proc.stderr
    (match,) = [ACCURACY_LINE.match(line) for line in proc.stdout.splitlines()]
    assert match.group(1) == path and int(match.group(4)) == len(y) == 100
    assert [float(match.group(2)), float(match.group(3))] == pytest.approx(expected, abs=5e-5)


def test_predict_images_prints_class_names(trained, cifar100_dir, tmp_path, capsys):
    from PIL import Image

    import predict
    from src.data import DATASETS, Normalizer, find_dataset_dir, load_split
    from src.deploy.export import export_network
    net = load_net(trained)
    path = str(tmp_path / "m_mindir.mindir")
    export_network(net, path, "MINDIR")
    x, _ = load_split(find_dataset_dir(cifar100_dir, DATASETS["cifar100"]), "cifar100", "test")
    files = []
    for i, (ext, size) in enumerate([("png", 32), ("png", 32), ("jpg", 64)]):
        files.append(str(tmp_path / f"img{i}.{ext}"))
        Image.fromarray(x[i].transpose(1, 2, 0)).resize((size, size)).save(files[-1])
    predict.main(["--mindir", path, "--data_dir", cifar100_dir, "--images", *files, "--topk", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    info = DATASETS["cifar100"]
    import mindspore as ms
    best = net(ms.Tensor(Normalizer(info.mean, info.std)(x[:2]))).asnumpy().argmax(axis=1)
    for line, image, top in zip(lines, files, list(best) + [None]):
        shown = re.findall(r"(class_\d+) (\d\.\d{4})", line[len(image) + 2:])
        assert line.startswith(f"{image}: ") and len(shown) == 3
        probs = [float(p) for _, p in shown]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
        if top is not None:                             # lossless 32x32 PNG: the network's own answer
            assert shown[0][0] == f"class_{top}"
    # Without the dataset's meta file the classes are shown by index.
    predict.main(["--mindir", path, "--data_dir", str(tmp_path / "none"), "--images", files[0], "--topk", "2"])
    assert re.fullmatch(r"\S+: \d+ \d\.\d{4}, \d+ \d\.\d{4}", capsys.readouterr().out.strip())


def test_bad_inputs_exit_2_with_one_line(trained, cifar100_dir, tmp_path, capfd):
    import export
    import predict
    from src.deploy.export import export_network
    from src.errors import run_main
    good = str(tmp_path / "good_mindir.mindir")
    export_network(load_net(trained), good, "MINDIR")
    junk = tmp_path / "junk_mindir.mindir"
    junk.write_bytes(b"not a model" * 100)
    bad_image = tmp_path / "bad.png"
    bad_image.write_text("not an image")
    ckpt_dir = os.path.dirname(trained)
    cases = [
        (predict.main, ["--mindir", str(tmp_path / "missing.mindir")], "no such file"),
        (predict.main, ["--mindir", str(junk)], "not a readable MindIR"),
        (predict.main, ["--mindir", trained], "expected a .mindir file"),
        (predict.main, ["--mindir", good, "--images", str(bad_image)], "not a readable image"),
        (export.main, ["--ckpt_dir", ckpt_dir, "--net", "ResNet", "--n_layer", "14",
                       "--ckpt_name", "cifar100-VGG8.ckpt"], "does not fit the network"),
        (export.main, ["--ckpt_dir", ckpt_dir, "--n_classes", "10", "--ckpt_name", "cifar100-VGG8.ckpt"],
         "wrong shape"),
        (export.main, ["--ckpt_dir", ckpt_dir, "--t_net_name", "ResNet110"],
         "cifar100-ResNet110-VGG8-ATS.ckpt not found"),
    ]
    for main, argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            run_main(main, argv)
        out, err = capfd.readouterr()
        assert exit_info.value.code == 2, argv
        assert len(err.strip().splitlines()) == 1 and "error:" in err and message in err, err
    assert not [name for name in os.listdir(ckpt_dir) if name.endswith(".mindir")]


@pytest.mark.skipif(shutil.which("bash") is None,
                    reason=NO_BASH if UNDER_WINE else "the scripts need bash (on Windows: Git Bash)")
def test_scripts_run_all_end_to_end(tmp_path):
    """``EPOCHES=1 ... bash run_all.sh`` from scripts/, outputs in WORK_DIR, DATA_DIR relative to scripts/."""
    data = tmp_path / "data"
    write_cifar100(str(data), n_train=64, n_test=50, n_classes=100)
    work = tmp_path / "work"
    scripts = os.path.join(ROOT, "scripts")
    env = dict(os.environ, EPOCHES="1", DATA_DIR=os.path.relpath(data, scripts), DOWNLOAD="False",
               WORK_DIR=str(work), PYTHON=sys.executable, GLOG_v="3")
    proc = subprocess.run(["bash", "run_all.sh"], cwd=scripts, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    students = ["cifar100-VGG8"] + [f"cifar100-{t}-VGG8-{way}" for way in ("TS", "ATS")
                                    for t in ("ResNet14", "ResNet110")]
    for stem in ["cifar100-ResNet14", "cifar100-ResNet110"] + students:
        assert (work / "ckpts" / f"{stem}.ckpt").is_file(), stem
    for stem in students:
        assert (work / "ckpts" / f"{stem}_mindir.mindir").is_file(), stem
    logs = {name: (work / "logs" / name).read_text() for name in
            ("teacher.log", "student-nokd.log", "student-kd-ts.log", "student-kd-ats.log")}
    assert "n_layer: 14" in logs["teacher.log"] and "n_layer: 110" in logs["teacher.log"]
    assert logs["student-kd-ts.log"].count("kd_way: TS") == 2 and "kd_way: ATS" not in logs["student-kd-ts.log"]
    assert logs["student-kd-ats.log"].count("kd_way: ATS") == 2
    assert "epoches: 1" in logs["student-nokd.log"]
    evaluated = [m for m in map(ACCURACY_LINE.match, proc.stdout.splitlines()) if m]
    assert [os.path.basename(m.group(1)) for m in evaluated] == [f"{s}_mindir.mindir" for s in students]
    assert all(m.group(4) == "50" for m in evaluated)
    # Run again, as the spec's flow does (a demo, then the real run): it ends as well, and keeps every
    # file of the first run that it replaced, unchanged, in ckpts/replaced/.
    first = {name: (work / "ckpts" / name).read_bytes() for name in os.listdir(work / "ckpts")
             if name.endswith((".ckpt", ".mindir"))}
    again = subprocess.run(["bash", "run_all.sh"], cwd=scripts, env=env, capture_output=True, text=True,
                           timeout=900)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    kept = {}
    for folder in (work / "ckpts" / "replaced").iterdir():
        kept.update({name: (folder / name).read_bytes() for name in os.listdir(folder)})
    assert {name: kept.get(name) for name in first} == first
    assert (work / "logs" / "teacher.log").read_text().count("# run started") == 4
