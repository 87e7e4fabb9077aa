"""Checkpoints that are written atomically and loaded strictly."""
import json
import logging
import os
import tempfile

import mindspore as ms

from ..errors import UserError
from .files import remove_tree, replace_file

STATE_KEY = "train_state"   # JSON of the loop's state (epoch, best accuracy, history, ...)


def save_atomic(params, path, state=None, before_replacing=None):
    """Write ``params`` (a Cell or a list of Parameters) to ``path`` via a temporary file + rename.

    An interrupted or failed write (disk full, ``path`` open in another program on Windows, ...)
    leaves the previous ``path`` untouched and no temporary file behind; a failure is reported as a
    UserError. ``state`` (a JSON-able dict) is stored beside the parameters. An existing ``path`` is
    handed to ``before_replacing`` (if given) once the new file is complete, just before it replaces
    it.
    """
    append = {STATE_KEY: json.dumps(state)} if state is not None else None
    work = None
    try:
        # A private folder beside the target: same file system (atomic rename), and it also holds
        # the temporary file MindSpore writes before its own rename, so cleaning up is one rmtree.
        work = tempfile.mkdtemp(prefix=".saving-", dir=os.path.dirname(os.path.abspath(path)))
        tmp = os.path.join(work, "state.ckpt")
        # MindSpore logs a CRITICAL line of its own on a failed write; ours below is the one line.
        logging.disable(logging.CRITICAL)
        try:
            ms.save_checkpoint(params, tmp, append_dict=append)
        finally:
            logging.disable(logging.NOTSET)
        if before_replacing and os.path.exists(path):
            before_replacing(path)
        replace_file(tmp, path)
    except OSError as err:
        raise UserError(f"cannot write the checkpoint {path} ({err.strerror or err}); "
                        f"the previous file, if any, is unchanged") from None
    finally:
        if work:
            remove_tree(work)


def read_checkpoint(path, what="checkpoint"):
    """Parameters (name -> Parameter) and the stored loop state (or None) of a checkpoint file."""
    if not os.path.isfile(path):
        raise UserError(f"{what} {path} not found")
    if os.path.getsize(path) == 0:
        raise UserError(f"{what} {path} is an empty file")
    try:
        params = ms.load_checkpoint(path)
    except (ValueError, RuntimeError, TypeError, OSError):
        raise UserError(f"{what} {path} is not a readable MindSpore checkpoint (truncated, corrupt "
                        f"or another format)") from None
    state = params.pop(STATE_KEY, None)
    return params, (json.loads(state) if isinstance(state, str) else None)


def check_fits(net, params, path, what="checkpoint", extra_ok=()):
    """Raise a UserError naming the first mismatching parameters unless ``params`` fit ``net`` exactly.

    MindSpore's own loader only warns about missing names, so the check is done here.
    """
    expected = {p.name: tuple(p.shape) for p in net.get_parameters()}
    missing = [n for n in expected if n not in params]
    unexpected = [n for n in params if n not in expected and not n.startswith(tuple(extra_ok))]
    wrong = [f"{n} {tuple(params[n].shape)} vs {expected[n]}" for n in expected
             if n in params and tuple(params[n].shape) != expected[n]]
    problems = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if names:
            more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
            problems.append(f"{label}: {', '.join(names[:3])}{more}")
    if problems:
        raise UserError(f"{what} {path} does not fit the network: {'; '.join(problems)}")


def load_into(net, path, what="checkpoint", extra_ok=()):
    """Load a checkpoint into ``net`` after checking every name and shape; returns the loop state."""
    params, state = read_checkpoint(path, what)
    check_fits(net, params, path, what, extra_ok)
    names = {p.name for p in net.get_parameters()}
    ms.load_param_into_net(net, {n: p for n, p in params.items() if n in names}, strict_load=True)
    return state
