"""The PyTorch parity tool (benchmarks/parity_torch.py) without PyTorch: the package's side against a
recorded reference (tests/fixtures/parity/ResNet8, made by the tool; the command is in
tests/fixtures/make_torch_fixtures.py). The package trains as PyTorch does, and the comparison fails
when a setting is wrong."""
import importlib.util
import os
import sys

import numpy as np
import pytest
from conftest import ROOT, run_entry

from src.errors import UserError
from src.kernels.engine import default_conv_engine

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
REFERENCE = os.path.join(ROOT, "tests", "fixtures", "parity", "ResNet8")
MULTIPLE = 10.0   # the tool's default


def judged(perturb=()):
    from parity_compare import judge
    from parity_package import train_against
    summary = train_against(REFERENCE, perturb, log=lambda line: None)
    return judge({**summary, "engine": "session"}, MULTIPLE)


def test_the_package_trains_as_pytorch_does():
    row, mismatches = judged()
    assert mismatches == []
    assert row["param_ratio"] < 3 and row["bn_ratio"] < 3, row


def test_weight_decay_left_out_is_a_mismatch():
    row, mismatches = judged([("weight_decay", 0.0)])
    assert row["param_ratio"] > 2 * MULTIPLE, row
    assert any("parameter error" in line for line in mismatches), mismatches


def test_a_wrong_momentum_fails_the_tool():
    done = run_entry("benchmarks/parity_torch.py", "--reference", REFERENCE, "--perturb", "momentum=0.85",
                     "--conv_engine", default_conv_engine())
    assert done.returncode == 1, done.stderr
    assert "MISMATCH ResNet8" in done.stdout and "parity: MISMATCH" in done.stdout, done.stdout


def test_a_moved_milestone_is_a_schedule_mismatch():
    from parity_compare import compare_schedules
    from parity_task import settings_of
    record = dict(np.load(os.path.join(REFERENCE, "reference.npz")))
    settings = settings_of(record)
    assert compare_schedules(record, settings)[0]["ok"]
    per_epoch = settings["schedule_steps_per_epoch"]
    authors = record["schedule_authors"].copy()
    authors[150 * per_epoch:160 * per_epoch] *= 10   # the first decay ten epochs late
    result, mismatches = compare_schedules({**record, "schedule_authors": authors}, settings)
    assert not result["ok"] and "the authors' code after epoch 5" in mismatches[0]


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="PyTorch is installed here")
def test_without_pytorch_one_line():
    import parity_torch
    with pytest.raises(UserError, match="PyTorch is not available"):
        parity_torch.main(["--torch_python", sys.executable, "--net", "ResNet8"])
