"""One training run's configuration, resolved once from the parsed flags and read-only afterwards.

Every default that depends on other flags is filled in here (the class count, the seed, the teacher
and student checkpoint names), every flag that names something the run reads or writes is checked
here, and the run's files are named here (run_files.py). Nothing changes the result afterwards:
the trainers, the run record and the resume check all see the same values.
"""
import os
import secrets
from types import SimpleNamespace
from typing import NamedTuple, Optional

from ..data import dataset_info
from ..errors import UserError
from ..nets.models import check_network
from ..storage.checkpoint import read_checkpoint
from ..storage.files import ensure_writable_dir
from ..storage.run_files import RunFiles, network_ckpt_name, run_files, student_ckpt_name
from ..storage.user_paths import join


class Flags(SimpleNamespace):
    """The flags of a run with every default resolved; read-only."""

    def __setattr__(self, name, value):
        raise AttributeError(f"--{name} is resolved once (src/run/config.py) and read-only afterwards")

    def __delattr__(self, name):
        raise AttributeError(f"--{name} is resolved once (src/run/config.py) and read-only afterwards")


class RunConfig(NamedTuple):
    args: Flags                  # every flag, resolved
    files: RunFiles              # what the run writes
    resume: Optional[str]        # the training state to continue from, or None
    seed_was_drawn: bool         # no --seed was given (a fresh run drew one; a resumed run reuses its own)


def resolve_run(parsed, distill=False):
    """The ``RunConfig`` of ``run_classify.py`` (or ``run_distill.py`` with ``distill``) from its
    parsed flags; a UserError names the first flag that cannot be used."""
    values = dict(vars(parsed))
    _check_networks(values, distill)
    if distill:
        _resolve_teacher(values)
        if values["ckpt_name"] is None:
            values["ckpt_name"] = student_ckpt_name(values["dataset"], values["t_net_name"],
                                                    values["net_name"], values["kd_way"])
    files = _output_files(values)
    if distill:
        _refuse_overwriting_the_teacher(values, files)
        _check_teacher_exists(values)
    values["n_classes"] = _n_classes(values["dataset"], values["n_classes"])
    ensure_writable_dir(values["ckpt_dir"], "--ckpt_dir")
    ensure_writable_dir(values["log_dir"], "--log_dir")
    resume = _resume_path(values["resume"], files)
    seed_was_drawn = values["seed"] is None
    if seed_was_drawn:
        # A resumed run continues with the seed it started with.
        recorded = _recorded_seed(resume) if resume else None
        values["seed"] = recorded if recorded is not None else secrets.randbelow(2 ** 31)
    return RunConfig(Flags(**values), files, resume, seed_was_drawn)


def resolve_teacher_flags(parsed):
    """The flags of a sweep (run_distill.py's, each cell naming its own outputs): the networks, the
    class count, ``--lamb`` and the teacher checkpoint resolved and checked, read-only."""
    values = dict(vars(parsed))
    _check_networks(values, distill=True)
    _resolve_teacher(values)
    _check_teacher_exists(values)
    values["n_classes"] = _n_classes(values["dataset"], values["n_classes"])
    return Flags(**values)


def _check_networks(values, distill):
    if distill:
        check_network(values["t_net"], values["t_n_layer"], "--t_net")
    check_network(values["net"], values["n_layer"])


def _n_classes(dataset, n_classes):
    """The dataset's class count unless given (setup.py checks a given one against the data)."""
    return dataset_info(dataset).n_classes if n_classes is None else n_classes


def _resolve_teacher(values):
    if not 0.0 <= values["lamb"] <= 1.0:
        raise UserError(f"--lamb {values['lamb']}: expected a value in [0, 1]")
    if values["t_ckpt"] is None:
        values["t_ckpt"] = join(values["ckpt_dir"], network_ckpt_name(values["dataset"], values["t_net_name"]))


def _check_teacher_exists(values):
    if not os.path.isfile(values["t_ckpt"]):
        raise UserError(f"teacher checkpoint --t_ckpt {values['t_ckpt']} not found (train it with "
                        f"run_classify.py, or pass --t_ckpt)")


def _refuse_overwriting_the_teacher(values, files):
    teacher = os.path.realpath(values["t_ckpt"])
    if any(os.path.realpath(out) == teacher for out in files.checkpoints()):
        raise UserError(f"--ckpt_name {values['ckpt_name']}: the student would overwrite the teacher "
                        f"checkpoint {values['t_ckpt']}; choose another --ckpt_name")


def _output_files(values):
    """The run's files, after checking that the names are plain file names."""
    for flag in ("--ckpt_name", "--log_name"):
        name = values[flag[2:]]
        if not name or os.path.basename(name) != name or name in (".", ".."):
            raise UserError(f"{flag} {name!r}: expected a file name without a folder "
                            f"(the folder is {flag[:-5]}_dir)")
    return run_files(values["ckpt_dir"], values["ckpt_name"], values["log_dir"], values["log_name"])


def _resume_path(resume, files):
    """``--resume auto`` -> this run's -last checkpoint if it exists (else a fresh start)."""
    if resume == "auto":
        return files.last if os.path.isfile(files.last) else None
    if resume is not None and not os.path.isfile(resume):
        raise UserError(f"--resume {resume}: no such checkpoint")
    return resume


def _recorded_seed(path):
    _, state = read_checkpoint(path, "--resume checkpoint")
    return (state or {}).get("args", {}).get("seed")
