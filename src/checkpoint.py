"""Checkpoints that are written atomically and loaded strictly."""
import json
import os
import stat

import mindspore as ms

from .errors import UserError

STATE_KEY = "train_state"   # JSON of the loop's state (epoch, best accuracy, history, ...)


def _replace(tmp, path):
    # MindSpore writes checkpoints read-only; Windows refuses to replace a read-only file.
    if os.name == "nt" and os.path.exists(path):
        os.chmod(path, stat.S_IWRITE | stat.S_IREAD)
    os.replace(tmp, path)


def save_atomic(params, path, state=None):
    """Write ``params`` (a Cell or a list of Parameters) to ``path`` via a temporary file + rename.

    An interrupted or failed write leaves the previous ``path`` untouched. ``state`` (a JSON-able
    dict) is stored beside the parameters.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp.ckpt")
    append = {STATE_KEY: json.dumps(state)} if state is not None else None
    try:
        ms.save_checkpoint(params, tmp, append_dict=append)
        _replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_checkpoint(path, what="checkpoint"):
    """Parameters (name -> Parameter) and the stored loop state (or None) of a checkpoint file."""
    if not os.path.isfile(path):
        raise UserError(f"{what} {path} not found")
    try:
        params = ms.load_checkpoint(path)
    except (ValueError, RuntimeError, TypeError, OSError) as err:
        raise UserError(f"{what} {path} is not a readable MindSpore checkpoint "
                        f"({str(err).strip().splitlines()[0]})") from None
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
