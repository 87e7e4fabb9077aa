"""Command-line flags shared by the entry points: names and defaults (the spec's), and value types.
What the parsed flags mean for a run is resolved once, in config.py."""
import argparse
import math

from ..data import DATASETS
from ..device import DEVICES
from ..kernels.engine import CONV_ENGINES, ENV_DEFAULT, default_conv_engine
from ..nets.models import MODELS
from ..storage.user_paths import below_cwd
from ..training.schedules import SCHEDULERS


def str2bool(text):
    """``True/False/true/false/1/0/yes/no`` -> bool (``type=bool`` would read "False" as True)."""
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "y", "on"):
        return True
    if value in ("false", "0", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def positive(kind, allow_zero=False):
    """A flag type: a finite number of ``kind`` above zero (or at least zero, with ``allow_zero``)."""
    adjective = "non-negative" if allow_zero else "positive"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not (math.isfinite(value) and (value >= 0 if allow_zero else value > 0)):
            raise argparse.ArgumentTypeError(f"expected a {adjective} number, got {text!r}")
        return value
    parse.__name__ = f"{adjective} {kind.__name__}"
    return parse


def seed_value(text):
    """A seed NumPy, Python and MindSpore all accept: an integer in [0, 2**32)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_data_flags(p):
    p.add_argument("--dataset", default="cifar100", choices=sorted(DATASETS), help="dataset name")
    p.add_argument("--data_dir", default=below_cwd("data"),
                   help="folder holding the extracted cifar-100-python/ (or cifar-10-batches-py/)")
    p.add_argument("--download", type=str2bool, default=True,
                   help="download the official archive if the data is absent (True/False)")
    p.add_argument("--n_classes", type=positive(int), default=None,
                   help="number of classes (default: the dataset's, 100 for cifar100)")


def add_net_flags(p, prefix="", role="network", net="VGG", n_layer=8, name="VGG8"):
    p.add_argument(f"--{prefix}net", default=net, choices=sorted(MODELS), help=f"{role} type")
    p.add_argument(f"--{prefix}n_layer", type=positive(int), default=n_layer, help=f"{role} depth")
    p.add_argument(f"--{prefix}width", type=positive(int), default=1,
                   help=f"{role} widening factor (WRN only: WRN28-8 is --{prefix}n_layer 28 --{prefix}width 8)")
    p.add_argument(f"--{prefix}net_name", default=name, help=f"{role} name (used in file names)")


def add_train_flags(p, log_name, ckpt_name):
    p.add_argument("--epoches", type=positive(int), default=240, help="training epochs (paper: 240)")
    p.add_argument("--lr", type=positive(float), default=0.03,
                   help="base learning rate (spec: 0.03; paper: 0.05)")
    p.add_argument("--momentum", type=positive(float, allow_zero=True), default=0.9, help="SGD momentum")
    p.add_argument("--weight_decay", type=positive(float, allow_zero=True), default=5e-4,
                   help="L2 weight decay (paper: 5e-4)")
    p.add_argument("--scheduler", default="step", choices=SCHEDULERS,
                   help="step: paper's 5-epoch warm-up, x0.1 at 150/180/210 of 240 epochs (scaled); "
                        "poly: port's 3-epoch warm-up then (1-t)^2 decay")
    p.add_argument("--batch_size", type=positive(int), default=128, help="images per step (global)")
    p.add_argument("--eval_batch_size", type=positive(int), default=500, help="images per test batch")
    p.add_argument("--log_dir", default=below_cwd("logs"), help="folder of the log and metrics files")
    p.add_argument("--log_name", default=log_name, help="log file name (appended to, never truncated)")
    p.add_argument("--ckpt_dir", default=below_cwd("ckpts"), help="folder of the checkpoints")
    p.add_argument("--ckpt_name", default=ckpt_name, help="final checkpoint file name")
    p.add_argument("--resume", default=None,
                   help="continue a run: a *-last.ckpt path, or 'auto' for this run's own")
    p.add_argument("--seed", type=seed_value, default=None,
                   help="random seed (default: drawn at random and recorded in the log)")
    p.add_argument("--deterministic", type=str2bool, default=False,
                   help="bit-identical CPU runs for a given seed (one operator thread; may be slower "
                        "on machines with many cores)")
    p.add_argument("--device_target", default="CPU", choices=DEVICES, help="device to run on")
    add_conv_engine_flag(p)


def add_conv_engine_flag(p):
    p.add_argument("--conv_engine", default=default_conv_engine(), choices=CONV_ENGINES,
                   help="what runs the convolutions, BatchNorm and pooling: onednn (the package's CPU "
                        "kernels on oneDNN, built with g++ on first use; Linux x86-64), mindspore "
                        "(MindSpore's own), or auto "
                        "(onednn where it builds and passes its check, else mindspore); default: "
                        f"${ENV_DEFAULT} or auto")
