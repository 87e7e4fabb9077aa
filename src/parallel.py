"""Data-parallel training under MindSpore's launcher (``msrun``); single processes never touch it."""
import os
from dataclasses import dataclass


@dataclass
class DataParallel:
    rank: int
    size: int

    def grad_reducer(self, parameters):
        """Averages the gradients of all ranks (one all-reduce per step)."""
        from mindspore import nn
        return nn.DistributedGradReducer(parameters, mean=True, degree=self.size)


def launched_by_msrun():
    return os.environ.get("MS_ROLE") == "MS_WORKER" and int(os.environ.get("MS_WORKER_NUM", "1")) > 1


def init_data_parallel():
    """A ``DataParallel`` for a process started by ``msrun`` with several workers, else None.

    Must run after the device is set. Each rank computes the gradient of its slice of the global
    batch; the averaged gradient equals a single process's at the global batch size.
    """
    if not launched_by_msrun():
        return None
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init
    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    return DataParallel(rank=get_rank(), size=get_group_size())
