"""The process tests/test_parallel.py starts (under msrun, or alone): run_classify.py's flow, then a
dump of this process's parameters and of what it wrote.

usage: parallel_worker.py DUMP_PREFIX NETS run_classify-flags...
NETS: "plain" trains a BatchNorm-free net (data-parallel equals one process at the same global
batch); "plain,bn" then also trains ResNet8 (ranks must still end identical, BN statistics included).
Each process writes DUMP_PREFIX-<rank or single>.npz.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mindspore import nn  # noqa: E402

import src.training.classify  # noqa: E402
from run_classify import build_parser  # noqa: E402
from src.errors import run_main  # noqa: E402
from src.nets.models import build_network  # noqa: E402
from src.run.config import resolve_run  # noqa: E402
from src.run.setup import prepare_run  # noqa: E402
from src.storage.run_files import run_files  # noqa: E402


class PlainNet(nn.Cell):
    """conv - ReLU - global average pool - linear: no BatchNorm, so batch slicing cannot matter."""

    def __init__(self, n_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, pad_mode="pad", padding=1, has_bias=True)
        self.relu = nn.ReLU()
        self.fc = nn.Dense(8, n_classes)

    def construct(self, x):
        return self.fc(self.relu(self.conv(x)).mean(axis=(2, 3)))


def main(argv):
    prefix, nets, flags = argv[0], argv[1].split(","), argv[2:]
    config = resolve_run(build_parser().parse_args(flags))
    args = config.args
    with prepare_run(config) as run:
        saves = []
        real_save = src.training.classify.save_atomic
        src.training.classify.save_atomic = lambda *a, **k: (saves.append(a[1]), real_save(*a, **k))
        dump = {}
        for kind in nets:
            net = PlainNet(args.n_classes) if kind == "plain" else build_network("ResNet", 8, args.n_classes)
            # One set of checkpoints per network, beside the run's own log and metrics.
            ckpts = run_files(args.ckpt_dir, f"{config.files.stem}-{kind}.ckpt", args.log_dir, args.log_name)
            outputs = config.files._replace(ckpt=ckpts.ckpt, last=ckpts.last, best=ckpts.best)
            history = src.training.classify.Classify(net, run.train, run.test, args, outputs, run.log, run.dist).fit()
            dump.update({f"{kind}/{p.name}": p.asnumpy() for p in net.get_parameters()})
            dump[f"{kind}:train_loss"] = np.array([r["loss"] for r in history])
        dump["saves"] = np.array(len(saves))
        dump["log_enabled"] = np.array(run.log.enabled)
        np.savez(f"{prefix}-{run.dist.rank if run.dist else 'single'}.npz", **dump)


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
