"""Entry points run in the background as a user would start them, with the Ctrl-C of each platform:
for the tests of interrupted, resumed and concurrent runs."""
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from itertools import count

from conftest import ROOT
from wine import UNDER_WINE, raise_sigint_in

FLAGS = ["--download", "False", "--net", "ResNet", "--n_layer", "8", "--epoches", "3",
         "--batch_size", "64", "--deterministic", "True", "--ckpt_name", "r8"]


def own_group():
    """Popen arguments that let ``press_ctrl_c`` reach the child alone. Windows: a process group of its
    own, the only target of a CTRL_BREAK_EVENT (a CTRL_C_EVENT cannot be aimed at one group)."""
    return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt" else {}


def press_ctrl_c(proc):
    """What a user's Ctrl-C (or Ctrl-Break) delivers to a program started with ``own_group()``."""
    if os.name != "nt":
        proc.send_signal(signal.SIGINT)
    elif UNDER_WINE:
        raise_sigint_in(proc.pid)      # NO_CONSOLE_EVENTS: what the console's handler thread would do
    else:
        proc.send_signal(signal.CTRL_BREAK_EVENT)


@contextlib.contextmanager
def paused(proc):
    """``proc`` stopped within ``with`` (SIGSTOP; NtSuspendProcess on Windows), then resumed."""
    if os.name != "nt":
        proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            proc.send_signal(signal.SIGCONT)
        return
    import ctypes
    kernel32, ntdll = ctypes.WinDLL("kernel32"), ctypes.WinDLL("ntdll")
    kernel32.OpenProcess.restype = ctypes.c_void_p
    kernel32.OpenProcess.argtypes = [ctypes.c_uint32, ctypes.c_int, ctypes.c_uint32]
    kernel32.CloseHandle.argtypes = ntdll.NtSuspendProcess.argtypes = ntdll.NtResumeProcess.argtypes = [ctypes.c_void_p]
    handle = kernel32.OpenProcess(0x0800, False, proc.pid)     # PROCESS_SUSPEND_RESUME
    assert handle and ntdll.NtSuspendProcess(handle) == 0, f"cannot pause process {proc.pid}"
    try:
        yield
    finally:
        ntdll.NtResumeProcess(handle)
        kernel32.CloseHandle(handle)


RUN_NUMBERS = count()


def start(folder, data_dir, *extra, script="run_classify.py"):
    """An entry point in the background, writing everything to ``folder``, its stdout and stderr to
    files beside it. (Files, not pipes: under Wine, with several runs at once, a finished run's
    pipes sometimes never reported end-of-file.)"""
    env = dict(os.environ, GLOG_v="3")
    stem = f"{folder}-run{next(RUN_NUMBERS)}"
    with open(stem + ".out", "w") as out, open(stem + ".err", "w") as err:
        proc = subprocess.Popen([sys.executable, os.path.join(ROOT, script), "--data_dir", data_dir,
                                 *FLAGS, "--ckpt_dir", folder, "--log_dir", folder, *map(str, extra)],
                                env=env, stdout=out, stderr=err, **own_group())
    proc.out_path, proc.err_path = stem + ".out", stem + ".err"
    return proc


def distill(folder, data_dir, teacher, *extra):
    """A 2-epoch distillation of ResNet8 from ``teacher`` (a ResNet8 checkpoint), seed 5."""
    return start(folder, data_dir, "--t_net", "ResNet", "--t_n_layer", 8, "--t_ckpt", teacher,
                 "--epoches", 2, "--seed", 5, *extra, script="run_distill.py")


def read_text(path):
    with open(path) as f:
        return f.read()


def interrupt_after_epoch_1(proc):
    """Ctrl-C as soon as the run reports epoch 1; returns its stderr."""
    deadline = time.monotonic() + 300
    while not any(line.startswith("[Epoch:1]") for line in read_text(proc.out_path).splitlines()):
        assert proc.poll() is None and time.monotonic() < deadline, read_text(proc.err_path)
        time.sleep(0.1)
    press_ctrl_c(proc)
    return finish(proc, 130)[1]


def finish(proc, code=0):
    proc.wait(timeout=300)
    out, err = read_text(proc.out_path), read_text(proc.err_path)
    assert proc.returncode == code, err
    return out, err


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
