"""Device, execution mode, seeds and determinism: set up once, before any network runs."""
import logging
import os
import random

import numpy as np

from .errors import UserError

DEVICES = ("CPU", "GPU", "Ascend")


def setup_device(target="CPU", seed=0, deterministic=False, device_id=None):
    """Select the device and graph mode, seed every generator, optionally force bit-identical CPU runs.

    On the CPU this also sets ``ONEDNN_MAX_CPU_ISA=AVX2`` (unless the user set it): on AVX-512
    processors MindSpore 2.10's bundled oneDNN otherwise runs 3x3 convolutions with its naive
    reference kernel, about 300x slower. It takes effect if set before the first convolution.
    """
    if target not in DEVICES:
        raise UserError(f"--device_target {target!r}: expected one of {', '.join(DEVICES)}")
    if target == "CPU":
        os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
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
