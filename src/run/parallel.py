"""Data-parallel training under MindSpore's launcher (``msrun``); single processes never touch it."""
import os
from dataclasses import dataclass

import numpy as np

from ..errors import UserError


@dataclass
class DataParallel:
    rank: int
    size: int

    def grad_reducer(self, parameters):
        """Averages the gradients of all ranks (one all-reduce per step, inside the compiled step)."""
        from mindspore import nn
        return nn.DistributedGradReducer(parameters, mean=True, degree=self.size)

    def all_sum(self, values):
        """Element-wise sum over all ranks of a short list of numbers (float32, run eagerly)."""
        import mindspore as ms
        from mindspore import ops
        return [float(v) for v in ops.AllReduce()(ms.Tensor(np.asarray(values, np.float32))).asnumpy()]

    def average(self, parameters):
        """Replace each parameter by its mean over all ranks (identical on every rank afterwards)."""
        from mindspore import ops
        reduce = ops.AllReduce()
        for p in parameters:
            p.set_data(reduce(p.value()) / self.size)


def launched_by_msrun():
    # msrun runs the script in its scheduler process too (MS_SCHED); that one must call init() as
    # well, or the workers wait for it forever.
    return os.environ.get("MS_ROLE") in ("MS_SCHED", "MS_WORKER")


def init_data_parallel():
    """A ``DataParallel`` for a process started by ``msrun``, else None.

    Must run after the device is set. In msrun's scheduler process ``init()`` serves the workers and
    ends the process. Each rank computes the gradient of its slice of every global batch; the
    averaged gradient equals a single process's at the global batch size.
    """
    if not launched_by_msrun():
        return None
    if os.name == "nt":
        # msrun starts its workers with os.setsid and reads `ip -j addr`; started by hand (MS_ROLE
        # set), communication.init() fails: the Windows build has no CPU collective library.
        raise UserError("data-parallel training (msrun, MS_ROLE) is not available on Windows: "
                        "MindSpore 2.10 supports it on Linux only; run the script as one process")
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init
    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    return DataParallel(rank=get_rank(), size=get_group_size())
