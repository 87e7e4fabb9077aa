import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


# When auto could not use the package's kernels for the session, why (setup_device's note).
SESSION_ENGINE = {"note": None}


@pytest.fixture(scope="session", autouse=True)
def cpu_device():
    """Graph mode on the CPU and the convolution engine the entry points choose by default
    (``$ATS_CONV_ENGINE`` or auto: CI runs the suite both ways), for every test."""
    from src.device import setup_device
    from src.kernels.engine import default_conv_engine
    _, SESSION_ENGINE["note"] = setup_device("CPU", seed=0, conv_engine=default_conv_engine())


@pytest.fixture(autouse=True)
def session_engine(cpu_device):
    """Entry points called in-process (analyze_teacher, export) choose their own engine: the next
    test starts with the session's again."""
    from src.kernels.engine import _state
    saved = dict(_state)
    yield
    _state.update(saved)


@pytest.fixture(scope="session")
def cifar100_dir(tmp_path_factory):
    """A tiny learnable CIFAR-100 folder (10 classes used, 256 train / 100 test images)."""
    from cifar_fixtures import write_cifar100
    root = tmp_path_factory.mktemp("data")
    write_cifar100(str(root), n_train=256, n_test=100, n_classes=10)
    return str(root)


def run_entry(script, *args, cwd=None, timeout=600):
    """Run an entry point as a user would (a fresh process); returns the CompletedProcess."""
    import subprocess
    env = dict(os.environ, GLOG_v="3")
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)
