"""What both sides of the PyTorch parity check share (benchmarks/parity_torch.py): the task's settings
and flags, the batches and teacher logits made from its seed, and the reference's files.

NumPy only: it is imported by the PyTorch side (its own venv, NumPy 2) and by the package's side.
"""
import argparse
import hashlib
import json
import re

import numpy as np

# The authors' recipe (their code: SGD, lr 0.05, momentum 0.9, weight decay 5e-4, 240 epochs, warm-up
# 5 epochs, x0.1 at epochs 150, 180, 210) and the spec's ATS settings.
DEFAULTS = {"steps": 30, "batch_size": 64, "n_classes": 10, "seed": 0, "lr": 0.05, "momentum": 0.9,
            "weight_decay": 5e-4, "lamb": 0.5, "tp_tau": 4.0, "t_tau": 2.0, "s_tau": 1.0,
            "steps_per_epoch": 4, "schedule_steps_per_epoch": 391}
EPOCHS, WARMUP_EPOCHS, MILESTONES, GAMMA = 240, 5, (150, 180, 210), 0.1

# The reference: the initial weights as the authors' code saves a network, the float64 parameters
# after every step, and the rest (settings, losses, errors, statistics, schedules).
INIT_PTH, PARAMS64, RECORD = "init.pth", "params64.npy", "reference.npz"

# Settings a deliberately wrong package run may change (--perturb), to see the comparison fail.
PERTURBABLE = ("lr", "momentum", "weight_decay", "lamb", "tp_tau", "t_tau", "s_tau")

_NET = re.compile(r"^(VGG|ResNet)(\d+)$|^WRN(\d+)-(\d+)$")


def parse_net(name):
    """``VGG8`` -> ("VGG", 8, 1), ``ResNet14`` -> ("ResNet", 14, 1), ``WRN16-2`` -> ("WRN", 16, 2);
    None for anything else."""
    match = _NET.match(name)
    if not match:
        return None
    if match.group(1):
        return match.group(1), int(match.group(2)), 1
    return "WRN", int(match.group(3)), int(match.group(4))


def perturbation(text):
    """A flag type: ``momentum=0.85`` -> ("momentum", 0.85)."""
    key, _, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if key not in PERTURBABLE or number is None:
        raise argparse.ArgumentTypeError(f"expected KEY=NUMBER with KEY one of {', '.join(PERTURBABLE)}, "
                                         f"got {text!r}")
    return key, number


def add_task_flags(p):
    """The task's flags, shared by the driver and the PyTorch side (which records them)."""
    for name, value in DEFAULTS.items():
        p.add_argument(f"--{name}", type=type(value), default=value, help=f"default {value}")


def task_settings(args, net):
    return {"net": net, **{k: getattr(args, k) for k in DEFAULTS}}


def make_batches(settings):
    """(images, labels, teacher_logits), one row per step: a learnable task (each class a fixed
    pattern, plus as much noise) and a teacher that knows the class (logit 4 above the others, noisy,
    so its wrong classes differ). Legacy ``RandomState``: its stream is the same in every NumPy."""
    rng = np.random.RandomState(settings["seed"])
    steps, batch, classes = settings["steps"], settings["batch_size"], settings["n_classes"]
    patterns = rng.standard_normal((classes, 3, 32, 32)).astype(np.float32)
    labels = rng.randint(0, classes, (steps, batch)).astype(np.int64)
    images = patterns[labels] + rng.standard_normal((steps, batch, 3, 32, 32)).astype(np.float32)
    teacher = (4.0 * np.eye(classes, dtype=np.float32)[labels]
               + rng.standard_normal((steps, batch, classes)).astype(np.float32))
    return images, labels, teacher


def batches_digest(batches):
    """sha256 of the batches: the sides check they trained on the same numbers."""
    digest = hashlib.sha256()
    for array in batches:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def settings_of(record):
    """The settings recorded in a reference's ``RECORD`` (a JSON string, so NumPy loads it without
    pickles)."""
    return json.loads(str(record["settings"]))
