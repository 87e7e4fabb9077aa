"""The names of a run's files, written once: checkpoints, log, metrics, run record, exports.

A run's checkpoint name (``--ckpt_name``) gives its stem; every other file of the run is named after
it: ``{stem}.ckpt`` (the final network), ``{stem}-last.ckpt`` (the training state after the last
epoch, for ``--resume``), ``{stem}-best.ckpt``, ``{stem}.run.json`` beside them; ``{stem}.metrics.jsonl``
beside the log; exports ``{stem}_mindir.mindir`` / ``{stem}.onnx`` beside the checkpoint.
"""
import os
from typing import NamedTuple

from .user_paths import join

CKPT_SUFFIX = ".ckpt"
METRICS_SUFFIX = ".metrics.jsonl"
RECORD_SUFFIX = ".run.json"
# What each export format's file is called: the checkpoint's stem plus this (the port's ``_mindir.mindir``).
EXPORT_SUFFIXES = {"MINDIR": "_mindir.mindir", "ONNX": ".onnx"}
# Entries of a training state (-last.ckpt) beside the network's parameters: the optimizer's momenta,
# its step counter and its momentum factor (a Parameter).
OPTIMIZER_ENTRIES = ("moments.", "global_step", "momentum")


def with_ckpt_suffix(name):
    """``name`` ending in ``.ckpt`` (a user may leave it out)."""
    return name if name.endswith(CKPT_SUFFIX) else name + CKPT_SUFFIX


def ckpt_stem(path):
    """A checkpoint's name or path without ``.ckpt``."""
    return path[:-len(CKPT_SUFFIX)] if path.endswith(CKPT_SUFFIX) else path


def network_ckpt_name(dataset, net_name):
    """A network trained alone (run_classify.py), e.g. the teacher ``cifar100-ResNet110.ckpt``."""
    return f"{dataset}-{net_name}{CKPT_SUFFIX}"


def student_ckpt_name(dataset, t_net_name, net_name, kd_way):
    """A student distilled by run_distill.py, e.g. ``cifar100-ResNet110-VGG8-ATS.ckpt``."""
    return f"{dataset}-{t_net_name}-{net_name}-{kd_way}{CKPT_SUFFIX}"


def trained_ckpt_name(dataset, net_name, t_net_name=None, kd_way="ATS"):
    """The name the trainers give a network: a distilled student if a teacher is named, else the
    network trained alone."""
    if t_net_name:
        return student_ckpt_name(dataset, t_net_name, net_name, kd_way)
    return network_ckpt_name(dataset, net_name)


def export_path(ckpt_path, file_format):
    return ckpt_stem(ckpt_path) + EXPORT_SUFFIXES[file_format]


class RunFiles(NamedTuple):
    """Where one training run writes (paths)."""
    ckpt_dir: str
    stem: str
    ckpt: str       # the final network
    last: str       # the training state after the last finished epoch (--resume)
    best: str       # the network of the best test accuracy so far
    record: str     # the run record (flags, versions, machine)
    log: str        # the log (appended to)
    metrics: str    # one JSON line per epoch

    def checkpoints(self):
        return self.ckpt, self.last, self.best

    def of_a_finished_run(self):
        """What a fresh run under these names would replace (the log is appended to instead)."""
        return self.ckpt, self.best, self.last, self.record, self.metrics

    def lock(self):
        """The file a running run holds locked (output_guard.py)."""
        return join(self.ckpt_dir, f".{self.stem}.lock")


def run_files(ckpt_dir, ckpt_name, log_dir, log_name):
    stem = ckpt_stem(with_ckpt_suffix(ckpt_name))
    return RunFiles(ckpt_dir=ckpt_dir, stem=stem, ckpt=join(ckpt_dir, stem + CKPT_SUFFIX),
                    last=join(ckpt_dir, f"{stem}-last{CKPT_SUFFIX}"),
                    best=join(ckpt_dir, f"{stem}-best{CKPT_SUFFIX}"),
                    record=join(ckpt_dir, stem + RECORD_SUFFIX),
                    log=join(log_dir, log_name), metrics=join(log_dir, stem + METRICS_SUFFIX))


def replaced_folder(parent, label, stamp):
    """Where files that a new run or export would replace are kept: ``{parent}/replaced/{label}-{stamp}``."""
    return join(parent, "replaced", f"{label}-{stamp}")


def metrics_stem(metrics_path):
    """``logs/cifar100-VGG8.metrics.jsonl`` -> ``cifar100-VGG8`` (the run's checkpoint stem)."""
    name = os.path.basename(metrics_path)
    return name[:-len(METRICS_SUFFIX)] if name.endswith(METRICS_SUFFIX) else os.path.splitext(name)[0]
