"""The analysis tools: teacher statistics (vs a direct loop), run summaries, the sweep (skip, resume,
settings check) and every figure command writing a valid PNG."""
import csv
import json
import math
import sys

import numpy as np
import pytest

from src.analysis.run_summary import group_summary, mean_std, summarize_history
from src.analysis.teacher_stats import AUTHORS_TAUS, per_sample_stats, temperature_table, wrong_class_stats
from src.errors import Interrupted, UserError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_bytes=5000):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > min_bytes, (path, len(data))


def loop_stats(logits, labels, tp_tau, t_tau):
    """The statistics written out sample by sample, class by class (float64)."""
    e, s, pc, ent = [], [], [], []
    for z, y in zip(logits.astype(np.float64), labels):
        scaled = [z[c] / (tp_tau if c == y else t_tau) for c in range(len(z))]
        top = max(scaled)
        w = [math.exp(v - top) for v in scaled]
        p = [v / sum(w) for v in w]
        q = [p[c] for c in range(len(p)) if c != y]
        mean = sum(q) / len(q)
        e.append(mean)
        s.append(math.sqrt(sum((v - mean) ** 2 for v in q) / len(q)))
        pc.append(p[y])
        ent.append(-sum(v * math.log(v) for v in p if v > 0))
    return {"e_q": np.mean(e), "sigma_q": np.mean(s), "p_correct": np.mean(pc), "entropy": np.mean(ent)}


@pytest.fixture
def fixed_logits():
    rng = np.random.default_rng(7)
    logits = (rng.normal(size=(9, 6)) * 3).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2])
    logits[0, 0] += 20.0          # a confident correct sample
    logits[1, 4] += 20.0          # a confident wrong one
    return logits, labels


@pytest.mark.parametrize("tp_tau,t_tau", [(1.0, 1.0), (0.3, 0.3), (4.0, 4.0), (4.0, 2.0), (1.25, 0.75)])
def test_statistics_match_a_direct_loop(fixed_logits, tp_tau, t_tau):
    logits, labels = fixed_logits
    got = wrong_class_stats(logits, labels, tp_tau, t_tau)
    want = loop_stats(logits, labels, tp_tau, t_tau)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-10, abs=1e-15), k
    # Chunked means equal the one-pass means.
    chunked = wrong_class_stats(logits, labels, tp_tau, t_tau, chunk=2)
    for k in want:
        assert chunked[k] == pytest.approx(got[k], rel=1e-12)


def test_temperature_limits_and_stability(fixed_logits):
    logits, labels = fixed_logits
    n_classes = logits.shape[1]
    hot = wrong_class_stats(logits, labels, 1e7, 1e7)
    assert hot["e_q"] == pytest.approx(1 / n_classes, rel=1e-6)
    assert hot["sigma_q"] < 1e-7
    assert hot["entropy"] == pytest.approx(math.log(n_classes), rel=1e-6)
    assert wrong_class_stats(logits, labels, 1e7, 2e6)["sigma_q"] < 1e-6   # ATS, both large
    # sigma falls as tau rises (TS); tiny temperatures and huge logits stay finite.
    sigmas = [wrong_class_stats(logits, labels, t, t)["sigma_q"] for t in (0.5, 1, 2, 4, 8)]
    assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
    cold = per_sample_stats(logits * 1e4, labels, 1e-3, 1e-3)
    assert all(np.isfinite(v).all() for v in cold.values())
    assert cold["e_q"][0] == pytest.approx(0.0, abs=1e-30)              # one-hot on the label
    assert cold["e_q"][1] == pytest.approx(1 / (n_classes - 1))        # one-hot on a wrong class


def test_temperature_table_schemes():
    assert len(AUTHORS_TAUS) == 24 and AUTHORS_TAUS[0] == 0.05 and AUTHORS_TAUS[-1] == 10.0
    logits = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    rows = temperature_table(logits, np.array([0, 2]), (1.0, 2.0), (1.25, 0.75), teacher="T")
    assert [(r["scheme"], r["tau"], r["tp_tau"], r["t_tau"]) for r in rows] == [
        ("TS", 1.0, 1.0, 1.0), ("TS", 2.0, 2.0, 2.0), ("ATS", 1.0, 1.25, 0.75), ("ATS", 2.0, 2.5, 1.5)]
    assert all(r["accuracy"] == 0.5 and r["n_classes"] == 3 and r["teacher"] == "T" for r in rows)


def test_summary_mean_and_std_on_known_values():
    mean, std = mean_std([0.70, 0.72, 0.74])
    assert mean == pytest.approx(0.72) and std == pytest.approx(0.02)
    assert mean_std([0.70, 0.72, 0.74], ddof=0)[1] == pytest.approx(math.sqrt(0.0008 / 3))
    assert math.isnan(mean_std([0.5])[1]) and mean_std([0.5], ddof=0) == (0.5, 0.0)
    history = [{"epoch": 1, "test_acc": 0.3}, {"epoch": 2, "test_acc": 0.6}, {"epoch": 3, "test_acc": 0.5}]
    assert summarize_history(history) == {"epochs": 3, "last_acc": 0.5, "best_acc": 0.6, "best_epoch": 2}
    runs = [{"group": "A", "last_acc": 0.5, "best_acc": 0.6},
            {"group": "B", "last_acc": 0.1, "best_acc": 0.2},
            {"group": "A", "last_acc": 0.7, "best_acc": 0.8}]
    a, b = group_summary(runs)
    assert (a["group"], a["n"], b["n"]) == ("A", 2, 1)
    assert a["last_mean"] == pytest.approx(0.6) and a["last_std"] == pytest.approx(math.sqrt(0.02))
    assert a["best_mean"] == pytest.approx(0.7) and math.isnan(b["best_std"])


def write_run(tmp_path, stem, seed, accs, kd_way="ATS"):
    """A metrics file and run record as run_distill.py writes them."""
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "ckpts").mkdir(exist_ok=True)
    records = [{"epoch": i + 1, "loss": 3.0 / (i + 1), "ce": 2.0, "kd": 1.0, "train_acc": a + 0.05,
                "test_acc": a, "lr": 0.05} for i, a in enumerate(accs)]
    path = tmp_path / "logs" / f"{stem}.metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    args = {"dataset": "cifar100", "t_net_name": "ResNet110", "net_name": "VGG8", "kd_way": kd_way,
            "tp_tau": 4.0, "t_tau": 2.0, "lr": 0.05, "seed": seed, "ckpt_name": f"{stem}.ckpt",
            "log_name": f"{stem}.log"}
    (tmp_path / "ckpts" / f"{stem}.run.json").write_text(json.dumps({"args": args}))
    return str(path)


def test_plot_runs_curves_table_and_seed_groups(tmp_path, capsys):
    import plot_runs
    files = [write_run(tmp_path, "ats-s1", 1, [0.30, 0.50, 0.60]),
             write_run(tmp_path, "ats-s2", 2, [0.35, 0.62, 0.58]),
             write_run(tmp_path, "ts-s1", 1, [0.30, 0.40, 0.45], kd_way="TS")]
    out = tmp_path / "curves.png"
    plot_runs.main(files + ["--out", str(out), "--ckpt_dir", str(tmp_path / "ckpts")])
    assert_png(out)
    text = capsys.readouterr().out
    assert "ats-s2  3       58.00            62.00            2" in text
    # Two seeds of ATS 4/2: last 60, 58 -> 59.00 +/- 1.41 (sample std); best 60, 62 -> 61.00 +/- 1.41.
    assert "cifar100 ResNet110->VGG8 ATS 4/2  2     59.00 +/- 1.41" in text
    assert "61.00 +/- 1.41" in text and "45.00 +/- n/a" in text
    plot_runs.main(files + ["--out", str(out), "--labels", "x,x,x", "--std", "population"])
    text = capsys.readouterr().out
    # last 60, 58, 45 -> mean 54.33, population std 6.65
    assert "x      3     54.33 +/- 6.65" in text
    with pytest.raises(UserError, match="--labels: 1 labels for 3"):
        plot_runs.main(files + ["--out", str(out), "--labels", "x"])


def test_missing_matplotlib_is_one_clear_error(monkeypatch):
    from src.analysis import plots
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UserError, match="pip install matplotlib"):
        plots.pyplot()


# ---------------------------------------------------------------------------------------------
# Commands that run networks (tiny CIFAR-100 folder of conftest, ResNet8 everywhere).
@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    import mindspore as ms

    from src.nets.models import build_network
    folder = tmp_path_factory.mktemp("teachers")
    paths = []
    for seed in (1, 2):
        ms.set_seed(seed)
        path = folder / f"resnet8-{seed}.ckpt"
        ms.save_checkpoint(build_network("ResNet", 8, 100), str(path))
        paths.append(str(path))
    return paths


def test_analyze_teacher_table_and_figure(teachers, cifar100_dir, tmp_path, capsys):
    import analyze_teacher
    from src.data import DATASETS, BatchLoader, Normalizer, load_split
    from src.teacher.frozen import load_teacher
    from src.training.evaluate import evaluate
    out = tmp_path / "stats"
    common = ["--data_dir", cifar100_dir, "--download", "False", "--t_net", "ResNet", "--t_n_layer", "8",
              "--split", "test", "--taus", "0.5,1,4", "--out_dir", str(out), "--batch_size", "64"]
    analyze_teacher.main(common + ["--t_ckpt", teachers[0], "--t_ckpt", teachers[1]])
    with open(out / "teacher_stats.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 3
    labels = sorted({r["teacher"] for r in rows})
    assert labels == ["ResNet8 (resnet8-1.ckpt)", "ResNet8 (resnet8-2.ckpt)"]
    assert {r["n_samples"] for r in rows} == {"100"} and {r["split"] for r in rows} == {"test"}
    # The table's accuracy is the teacher's own test accuracy.
    info = DATASETS["cifar100"]
    images, y = load_split(cifar100_dir + "/cifar-100-python", "cifar100", "test")
    loader = BatchLoader(images, y, 64, Normalizer(info.mean, info.std), train=False)
    acc = evaluate(load_teacher("ResNet", 8, 100, 1, teachers[0]), loader)[0]
    assert float(rows[0]["accuracy"]) == pytest.approx(acc)
    ats = [r for r in rows if r["scheme"] == "ATS" and r["tau"] == "4.0"][0]
    assert float(ats["tp_tau"]) == 5.0 and float(ats["t_tau"]) == 3.0
    assert len(json.loads((out / "teacher_stats.json").read_text())["rows"]) == 12
    assert_png(out / "teacher_stats.png")
    assert (out / "teacher_stats.pdf").read_bytes()[:5] == b"%PDF-"
    assert "accuracy" in capsys.readouterr().out
    with pytest.raises(UserError, match="--t_n_layer given 2 times for 3 teachers"):
        analyze_teacher.main(common + ["--t_n_layer", "8", "--t_ckpt", teachers[0], "--t_ckpt",
                                       teachers[1], "--t_ckpt", teachers[0]])


def test_sweep_skips_finished_cells_and_resumes(teachers, cifar100_dir, tmp_path, monkeypatch):
    import sweep
    out = tmp_path / "sweep"
    common = ["--data_dir", cifar100_dir, "--download", "False", "--t_net", "ResNet", "--t_n_layer", "8",
              "--t_net_name", "ResNet8", "--t_ckpt", teachers[0], "--net", "ResNet", "--n_layer", "8",
              "--net_name", "Student8", "--epoches", "1", "--batch_size", "128", "--eval_batch_size", "100",
              "--out_dir", str(out)]
    table = out / "sweep_results.csv"
    stem = "cifar100-ResNet8-Student8-tp2-t1-s0"
    real_run = sweep.run_script

    # 1. A real cell whose run "dies" after training, before the sweep records it.
    def train_then_die(script, argv):
        real_run(script, argv)
        raise Interrupted("killed")
    monkeypatch.setattr(sweep, "run_script", train_then_die)
    with pytest.raises(Interrupted, match="run the same command again"):
        sweep.main(common + ["--tp_taus", "2", "--t_taus", "1"])
    assert not table.exists() and (out / "ckpts" / f"{stem}-last.ckpt").is_file()

    # 2. The same command resumes that cell from its saved state and records it.
    monkeypatch.setattr(sweep, "run_script", real_run)
    sweep.main(common + ["--tp_taus", "2", "--t_taus", "1"])
    with open(table, newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert ((row["tp_tau"], row["t_tau"], row["kd_way"], row["seed"], row["epochs"])
            == ("2.0", "1.0", "ATS", "0", "1"))
    assert 0.0 <= float(row["final_test_acc"]) <= float(row["best_test_acc"]) <= 1.0
    assert "resumed from" in (out / "logs" / f"{stem}.log").read_text()
    assert not (out / "ckpts" / f"{stem}-last.ckpt").exists() and (out / "ckpts" / f"{stem}.ckpt").is_file()
    assert_png(out / "sweep_heatmap.png", min_bytes=2000)
    assert (out / "sweep_heatmap.pdf").is_file()

    # 3. A larger grid runs only the new cell, as TS, with --resume auto; a rerun runs nothing.
    calls = []

    def fake_run(script, argv):
        calls.append(argv)
        cell = argv[argv.index("--ckpt_name") + 1][:-len(".ckpt")]
        record = {"epoch": 1, "loss": 1.0, "test_acc": 0.25}
        (out / "logs" / f"{cell}.metrics.jsonl").write_text(json.dumps(record) + "\n")
    monkeypatch.setattr(sweep, "run_script", fake_run)
    sweep.main(common + ["--tp_taus", "1,2", "--t_taus", "1"])
    (argv,) = calls
    assert argv[argv.index("--kd_way") + 1] == "TS" and argv[argv.index("--resume") + 1] == "auto"
    assert "--tp_taus" not in argv and "--out_dir" not in argv
    sweep.main(common + ["--tp_taus", "1,2", "--t_taus", "1"])
    assert len(calls) == 1
    with open(table, newline="") as f:
        recorded = [(r["tp_tau"], r["final_test_acc"]) for r in csv.DictReader(f)]
    assert recorded == [("2.0", row["final_test_acc"]), ("1.0", "0.25")]
    # 4. Other settings in the same folder, or per-cell flags, are refused.
    with pytest.raises(UserError, match="other settings: --epoches 1 \\(now 2\\)"):
        sweep.main(common + ["--epoches", "2"])
    with pytest.raises(UserError, match="--tp_tau: set per cell by the sweep"):
        sweep.main(common + ["--tp_tau", "3"])


def test_cell_process_failures_become_one_line_errors(tmp_path):
    from src.analysis.sweep import run_script
    script = tmp_path / "cell.py"
    script.write_text("import sys; sys.exit(int(sys.argv[1]))\n")
    run_script(str(script), ["0"])
    with pytest.raises(UserError, match="cell.py failed with exit code 2"):
        run_script(str(script), ["2"])
    with pytest.raises(Interrupted, match="cell.py was stopped"):
        run_script(str(script), ["130"])
