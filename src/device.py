"""Device, execution mode, seeds and determinism: set up once, before any network runs; and the cores
this process may use."""
import logging
import os
import random

import numpy as np

from .errors import UserError
from .kernels.engine import resolve_conv_engine

DEVICES = ("CPU", "GPU", "Ascend")

_first_setup = True   # no setup_device yet in this process (the tests call entry points in-process)


def usable_cores():
    """Cores this process may run on (``os.sched_getaffinity`` does not exist on Windows or macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def setup_device(target="CPU", seed=0, deterministic=False, device_id=None, conv_engine="mindspore",
                 log=None):
    """Select the device, graph mode and convolution engine, seed every generator, optionally force
    bit-identical CPU runs. Returns (engine, note): the convolution engine and, if ``auto`` could not
    use the package's kernels, why (``log`` hears about a first build of them).

    With MindSpore's own convolutions on the CPU this also sets ``ONEDNN_MAX_CPU_ISA=AVX2`` (unless
    the user set it): on AVX-512 processors MindSpore 2.10's bundled oneDNN otherwise runs 3x3
    convolutions with its naive reference kernel, about 300x slower. It takes effect if set before
    the first convolution. The package's kernels (src/kernels/) need no cap, and without it
    oneDNN's other kernels that MindSpore runs (softmax, matmul) are AVX-512 ones too. A later call
    in the same process sets no cap: it would not take effect, yet would be recorded (run.json) and
    would change the kernels' cache key (build.py).
    """
    if target not in DEVICES:
        raise UserError(f"--device_target {target!r}: expected one of {', '.join(DEVICES)}")
    engine, note = resolve_conv_engine(conv_engine, target, log)
    global _first_setup
    if target == "CPU" and engine == "mindspore" and _first_setup:
        os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    _first_setup = False
    import mindspore as ms

    # MindSpore logs ERROR lines of its own (missing CUDA libraries, ...) before failing here; the
    # UserError below is the one line the user needs.
    logging.disable(logging.ERROR)
    try:
        if device_id is None:
            ms.set_device(target)
        else:
            ms.set_device(target, device_id)
    except (RuntimeError, ValueError, TypeError) as err:
        reason = str(err).strip().splitlines()[0].split(". ")[0]
        raise UserError(f"--device_target {target}: this MindSpore installation cannot use it "
                        f"({reason})") from None
    finally:
        logging.disable(logging.NOTSET)
    ms.set_context(mode=ms.GRAPH_MODE)
    random.seed(seed)
    np.random.seed(seed)
    ms.set_seed(seed)
    if deterministic and target == "CPU":
        # Parallel CPU kernels reduce in a scheduling-dependent order; one thread fixes the order.
        ms.device_context.cpu.op_tuning.threads_num(1)
    return engine, note
