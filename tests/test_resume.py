"""Never lose a run: Ctrl-C + --resume equals an uninterrupted run; atomic checkpoints; determinism."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from background_runs import digest, distill, finish, interrupt_after_epoch_1, own_group, start
from conftest import ROOT
from wine import NO_CONSOLE_EVENTS, UNDER_WINE

from src.training.classify import STOP_SIGNALS, StopSignals


def results(folder):
    """The metrics file without what depends on the run's circumstances, not on its results: timings,
    and the share of teacher outputs the cache served (the distillations share one cache)."""
    with open(os.path.join(folder, "r8.metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return [{k: v for k, v in r.items() if "second" not in k and k not in ("img_per_s", "teacher_cache_served")}
            for r in rows]


@pytest.fixture(scope="module")
def runs(cifar100_dir, tmp_path_factory):
    """Deterministic runs (one operator thread each, so several at a time). run_classify.py for 3
    epochs: ``full`` and ``again`` (seed 5), ``other`` (seed 6), and ``cut`` (seed 5), stopped by
    Ctrl-C during epoch 2 and resumed with ``--resume auto``; run_distill.py for 2 epochs with
    ``full``'s network as the teacher: ``kd_full``, and ``kd_cut`` stopped and resumed alike."""
    root = tmp_path_factory.mktemp("resume")
    d = {name: str(root / name) for name in ("full", "again", "other", "cut", "kd_full", "kd_cut")}
    cut = start(d["cut"], cifar100_dir, "--seed", 5)
    full = start(d["full"], cifar100_dir, "--seed", 5)
    other = start(d["other"], cifar100_dir, "--seed", 6)
    cut_err = interrupt_after_epoch_1(cut)
    resumed = start(d["cut"], cifar100_dir, "--seed", 5, "--resume", "auto")
    finish(full)
    teacher = os.path.join(d["full"], "r8.ckpt")
    again = start(d["again"], cifar100_dir, "--seed", 5)
    kd_full = distill(d["kd_full"], cifar100_dir, teacher)
    finish(other)
    interrupt_after_epoch_1(distill(d["kd_cut"], cifar100_dir, teacher))
    kd_resumed = distill(d["kd_cut"], cifar100_dir, teacher, "--resume", "auto")
    resumed_out, _ = finish(resumed)
    for proc in (again, kd_full, kd_resumed):
        finish(proc)
    return d, cut_err, resumed_out


def test_interrupt_says_how_to_resume(runs):
    d, cut_err, _ = runs
    last = os.path.join(d["cut"], "r8-last.ckpt")
    assert cut_err.strip() == (f"run_classify.py: interrupted; the state after epoch 1 is in {last}; "
                               f"continue with the same command plus --resume auto")


# Stop requests from outside the process, as each platform sends them (SIGTERM: what MindSpore on
# Linux turns Ctrl-C into during graph execution, and what a service manager sends).
OUTSIDE_STOPS = ["CTRL_BREAK_EVENT"] if os.name == "nt" else ["SIGINT", "SIGTERM"]
STOPPABLE = """
import sys, time
from src.training.classify import StopSignals
try:
    with StopSignals():
        print("ready", flush=True)
        for _ in range(600):    # short sleeps: a Python handler runs between them, as between steps
            time.sleep(0.1)
except KeyboardInterrupt:
    print("stopped cleanly", flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("event", OUTSIDE_STOPS)
def test_stop_request_from_another_process_stops_the_loop(event):
    if UNDER_WINE:
        pytest.skip(NO_CONSOLE_EVENTS)
    proc = subprocess.Popen([sys.executable, "-c", STOPPABLE], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **own_group())
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    started = time.perf_counter()
    proc.send_signal(getattr(signal, event))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and out.strip() == "stopped cleanly" and err == "", err
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize("name", [signal.Signals(s).name for s in STOP_SIGNALS])
def test_stop_signals_interrupt_but_wait_for_a_held_block(name):
    """The handler itself, in this process (runs under Wine too: signal.raise_signal calls it)."""
    sig = getattr(signal, name)
    before = signal.getsignal(sig)
    with pytest.raises(KeyboardInterrupt):
        with StopSignals():
            signal.raise_signal(sig)
    done = []
    with pytest.raises(KeyboardInterrupt):
        with StopSignals() as stop:
            with stop.held():          # an epoch's checkpoints and log line: written together
                signal.raise_signal(sig)
                done.append("block")
            done.append("after the block")
    assert done == ["block"]
    assert signal.getsignal(sig) is before


def test_resumed_run_equals_uninterrupted(runs):
    d, _, resumed_out = runs
    assert f"resumed from {os.path.join(d['cut'], 'r8-last.ckpt')} after epoch 1" in resumed_out
    for name in ("r8.ckpt", "r8-best.ckpt"):
        assert digest(os.path.join(d["cut"], name)) == digest(os.path.join(d["full"], name)), name
    # Same losses, accuracies and learning rates epoch by epoch: the schedule position was restored.
    assert results(d["cut"]) == results(d["full"])
    assert [r["epoch"] for r in results(d["cut"])] == [1, 2, 3]
    with open(os.path.join(d["cut"], "student-nokd.log")) as f:
        log = f.read()
    assert log.count("# run started") == 2 and log.count("resumed from") == 2
    for epoch in (1, 2, 3):
        assert log.count(f"[Epoch:{epoch}]") == 1


def test_resumed_distillation_equals_uninterrupted(runs):
    d, _, _ = runs
    for name in ("r8.ckpt", "r8-best.ckpt"):
        assert digest(os.path.join(d["kd_cut"], name)) == digest(os.path.join(d["kd_full"], name)), name
    assert results(d["kd_cut"]) == results(d["kd_full"])


def test_same_seed_identical_other_seed_differs(runs):
    d, _, _ = runs
    assert digest(os.path.join(d["again"], "r8.ckpt")) == digest(os.path.join(d["full"], "r8.ckpt"))
    assert digest(os.path.join(d["other"], "r8.ckpt")) != digest(os.path.join(d["full"], "r8.ckpt"))
    assert results(d["other"]) != results(d["full"])


def test_run_records_itself(runs):
    d, _, _ = runs
    with open(os.path.join(d["full"], "r8.run.json")) as f:
        record = json.load(f)
    assert record["args"]["seed"] == 5 and record["args"]["deterministic"] is True
    env = record["environment"]
    for key in ("package_version", "mindspore", "numpy", "python", "device_target"):
        assert env[key], key
    with open(os.path.join(d["full"], "student-nokd.log")) as f:
        log = f.read()
    assert "seed: 5" in log and f"# mindspore: {env['mindspore']}" in log


def test_drawn_seed_is_recorded_and_reused_on_resume(cifar100_dir, tmp_path):
    """Without --seed a seed is drawn and logged; --resume continues with the seed of the run."""
    from mindspore import nn

    import run_classify
    from src.run.config import resolve_run
    from src.run.setup import prepare_run
    from src.storage.checkpoint import save_atomic
    argv = ["--data_dir", cifar100_dir, "--download", "False", "--ckpt_dir", str(tmp_path),
            "--log_dir", str(tmp_path), "--ckpt_name", "r8"]
    fresh = resolve_run(run_classify.build_parser().parse_args(argv))
    assert 0 <= fresh.args.seed < 2 ** 31 and fresh.seed_was_drawn
    save_atomic(nn.Dense(2, 2), str(tmp_path / "r8-last.ckpt"), {"epoch": 1, "args": {"seed": 1234}})
    config = resolve_run(run_classify.build_parser().parse_args(argv + ["--resume", "auto"]))
    with prepare_run(config) as run:
        assert config.args.seed == 1234 and config.resume == str(tmp_path / "r8-last.ckpt")
        run.log.begin()
    assert "seed: 1234" in (tmp_path / "student-nokd.log").read_text()


# -- atomic writes ---------------------------------------------------------------------------------
def _net_and_params():
    from mindspore import nn
    net = nn.Dense(4, 3)
    return net, {p.name: p.asnumpy().copy() for p in net.get_parameters()}


@pytest.mark.parametrize("crash", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_crash_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch, crash):
    import mindspore as ms
    import mindspore.train.serialization as serialization

    from src.errors import UserError
    from src.storage.checkpoint import read_checkpoint, save_atomic
    net, before = _net_and_params()
    path = str(tmp_path / "net-last.ckpt")
    save_atomic(net, path, {"epoch": 1})
    for p in net.get_parameters():
        p.set_data(ms.Tensor(p.asnumpy() + 1))
    real_write = serialization._write_parameter_bytes_data

    def write_then_crash(name, value, f, *args, **kwargs):
        real_write(name, value, f, *args, **kwargs)   # part of the file is on disk when it fails
        raise crash

    monkeypatch.setattr(serialization, "_write_parameter_bytes_data", write_then_crash)
    with pytest.raises(UserError if isinstance(crash, OSError) else KeyboardInterrupt) as info:
        save_atomic(net, path, {"epoch": 2})
    if isinstance(crash, OSError):
        assert str(info.value) == (f"cannot write the checkpoint {path} (No space left on device); "
                                   f"the previous file, if any, is unchanged")
    monkeypatch.undo()
    params, state = read_checkpoint(path)
    assert state == {"epoch": 1}
    for name, value in before.items():
        np.testing.assert_array_equal(params[name].asnumpy(), value)
    assert os.listdir(tmp_path) == ["net-last.ckpt"]   # no temporary file left behind


def test_overwrite_replaces_atomically(tmp_path):
    from src.storage.checkpoint import read_checkpoint, save_atomic
    net, _ = _net_and_params()
    path = str(tmp_path / "net.ckpt")
    save_atomic(net, path, {"epoch": 1})
    save_atomic(net, path, {"epoch": 2})          # MindSpore writes read-only files: still replaced
    assert read_checkpoint(path)[1] == {"epoch": 2}
    assert os.listdir(tmp_path) == ["net.ckpt"]
