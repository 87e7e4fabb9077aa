"""Data-parallel training: two CPU processes under msrun against one process at the same global batch."""
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "parallel_worker.py")
# msrun starts its workers as "python script.py": the venv's interpreter must come first on PATH.
BIN = os.path.dirname(sys.executable)
MSRUN = shutil.which("msrun", path=BIN + os.pathsep + os.environ.get("PATH", ""))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Found by running this test and a hand-started cluster (MS_ROLE, MS_SCHED_HOST, ...) under Windows.
NOT_ON_WINDOWS = ("MindSpore 2.10 has no data parallelism on Windows: msrun starts its workers with "
                  "os.setsid (absent on Windows) and reads `ip -j addr`, and a hand-started cluster "
                  "fails in communication.init() ('The pointer[host_comm_lib_instance_] is null')")


@pytest.mark.skipif(os.name == "nt", reason=NOT_ON_WINDOWS)
@pytest.mark.skipif(MSRUN is None, reason="msrun (MindSpore's launcher) is not installed")
def test_two_processes_equal_one(cifar100_dir, tmp_path):
    env = dict(os.environ, GLOG_v="3", PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    flags = ["--data_dir", cifar100_dir, "--download", "False", "--epoches", "2", "--batch_size", "64",
             "--seed", "3", "--deterministic", "True", "--ckpt_name", "t"]
    dp, single = tmp_path / "dp", tmp_path / "single"
    # The single process runs while msrun's cluster starts up.
    alone = subprocess.Popen([sys.executable, WORKER, str(tmp_path / "dump"), "plain", *flags,
                              "--ckpt_dir", single, "--log_dir", single], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    launched = subprocess.run(
        [MSRUN, "--worker_num=2", "--local_worker_num=2", f"--master_port={free_port()}",
         f"--log_dir={tmp_path / 'msrun'}", "--join=True", WORKER, str(tmp_path / "dump"), "plain,bn",
         *flags, "--ckpt_dir", str(dp), "--log_dir", str(dp)],
        env=env, capture_output=True, text=True, timeout=400)
    out, err = alone.communicate(timeout=400)
    assert alone.returncode == 0, err
    logs = "".join(open(p).read()[-3000:] for p in (tmp_path / "msrun").glob("*.log"))
    assert launched.returncode == 0, launched.stderr[-2000:] + logs

    one, r0, r1 = (np.load(tmp_path / f"dump-{r}.npz") for r in ("single", 0, 1))
    params = [k for k in r0.files if "/" in k]
    assert any(k.startswith("bn/") and "moving_mean" in k for k in params)
    for k in params:
        # Gradients are all-reduced and BatchNorm's moving statistics averaged: the ranks agree exactly.
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
    for k in (k for k in params if k.startswith("plain/")):
        # Without BatchNorm two processes at batch 2 x 32 are one process at batch 64 (float rounding).
        np.testing.assert_allclose(r0[k], one[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # The logged training loss is over both ranks' images, not rank 0's half.
    np.testing.assert_allclose(r0["plain:train_loss"], one["plain:train_loss"], rtol=1e-5)

    # Rank 0 alone writes checkpoints and the log.
    assert int(r0["saves"]) > 0 and int(r1["saves"]) == 0
    assert bool(r0["log_enabled"]) and not bool(r1["log_enabled"])
    log = (dp / "student-nokd.log").read_text()
    assert log.count("# run started") == 1 and "data_parallel_processes: 2" in log
    assert log.count("[Epoch:") == 4            # 2 nets x 2 epochs, written once
    assert sorted(os.listdir(dp)) == sorted(["student-nokd.log", "t.metrics.jsonl", "t.run.json"] + [
        f"t-{net}{end}.ckpt" for net in ("plain", "bn") for end in ("", "-last", "-best")])


@pytest.mark.skipif(os.name != "nt", reason="a refusal for Windows only")
def test_windows_refuses_data_parallel_in_one_line(monkeypatch):
    from src.errors import UserError
    from src.run.parallel import init_data_parallel
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")      # what msrun, or a user starting ranks by hand, sets
    with pytest.raises(UserError, match="data-parallel training .* is not available on Windows"):
        init_data_parallel()
