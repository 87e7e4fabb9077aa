"""The training loop, written once: ``Classify`` trains a network alone; ``Distill`` (distill.py)
supplies only a teacher and a different loss."""
import math
import signal
import time
from contextlib import contextmanager

import mindspore as ms

from ..errors import Interrupted, UserError
from ..losses import ClassifyLoss
from ..storage.checkpoint import check_fits, read_checkpoint, save_atomic
from ..storage.run_files import OPTIMIZER_ENTRIES
from .evaluate import cell_forward, evaluate
from .optimizer import build_optimizer
from .schedules import build_schedule
from .train_step import STEP_OUTPUTS, TrainStep

# Flags that must equal those of the run being resumed (others, e.g. --log_name, may change).
RESUME_KEYS = ("dataset", "n_classes", "net", "n_layer", "width", "epoches", "lr", "momentum",
               "weight_decay", "batch_size", "scheduler", "seed")


class Classify:
    """Trains ``net`` with SGD + momentum + weight decay on a per-step learning-rate schedule.

    Every epoch: train, evaluate on the whole test split, log, save ``<stem>-last.ckpt`` (the full
    training state, for ``--resume``) and, on a new best test accuracy, ``<stem>-best.ckpt``. At the
    end the network alone goes to ``ckpt_dir/ckpt_name``. All checkpoint writes are atomic.
    """

    def __init__(self, net, train_loader, test_loader, args, outputs, run_log, dist=None):
        self.net, self.train_loader, self.test_loader = net, train_loader, test_loader
        self.args, self.out, self.log = args, outputs, run_log
        self.dist, self.rank = dist, dist.rank if dist else 0
        steps = len(train_loader)
        self.lr = build_schedule(args.scheduler, args.lr, args.epoches, steps)
        self.optimizer = build_optimizer(net.trainable_params(), self.lr, args.momentum, args.weight_decay)
        reducer = dist.grad_reducer(self.optimizer.parameters) if dist else None
        self.step = TrainStep(net, self.make_loss(), self.optimizer, reducer)
        self.history, self.best_acc, self.best_epoch, self.start_epoch = [], -1.0, 0, 0

    # -- what a subclass changes -----------------------------------------------------------------
    def make_loss(self):
        return ClassifyLoss()

    def extra_inputs(self, images, views):
        """Inputs of the loss beyond (logits, labels), computed from the batch's images (``views``:
        which image and augmentation each row is)."""
        return ()

    def resume_keys(self):
        return RESUME_KEYS

    # -- state -------------------------------------------------------------------------------------
    def state_params(self):
        """Network parameters plus the optimizer's own (momenta, step counter): what resume needs."""
        net_names = {p.name for p in self.net.get_parameters()}
        extra = [p for p in self.optimizer.get_parameters()
                 if p.name not in net_names and p.name != "learning_rate"]
        return list(self.net.get_parameters()) + extra

    def resume(self, path):
        params, state = read_checkpoint(path, "--resume checkpoint")
        if state is None or "epoch" not in state:
            raise UserError(f"--resume {path}: a plain network checkpoint, not a training state "
                            f"(use the run's *-last.ckpt)")
        differing = [f"--{k} {state['args'].get(k)} (now {getattr(self.args, k)})"
                     for k in self.resume_keys() if state["args"].get(k) != getattr(self.args, k)]
        if differing:
            more = f" (+{len(differing) - 4} more)" if len(differing) > 4 else ""
            raise UserError(f"--resume {path}: it was trained with other settings: "
                            f"{', '.join(differing[:4])}{more}")
        targets = self.state_params()
        check_fits(self.net, params, path, "--resume checkpoint", extra_ok=OPTIMIZER_ENTRIES)
        missing = [p.name for p in targets if p.name not in params]
        if missing:
            raise UserError(f"--resume {path}: optimizer state missing ({', '.join(missing[:3])})")
        for p in targets:
            p.set_data(ms.Tensor(params[p.name].asnumpy()))
        self.history = state["history"]
        self.best_acc, self.best_epoch = state["best_acc"], state["best_epoch"]
        self.start_epoch = state["epoch"]
        self.log.message(f"resumed from {path} after epoch {self.start_epoch}")

    def _state(self, epoch):
        return {"epoch": epoch, "best_acc": self.best_acc, "best_epoch": self.best_epoch,
                "history": self.history, "args": vars(self.args)}

    # -- the loop ----------------------------------------------------------------------------------
    def train_epoch(self, epoch):
        """One pass over the training data; returns mean loss, CE and KD parts, and accuracy."""
        self.step.set_train(True)
        # The losses weighted by the batch size, and the correct predictions counted.
        sums = dict.fromkeys(STEP_OUTPUTS, 0.0)
        seen = 0
        started = time.perf_counter()
        bar = self.log.progress(len(self.train_loader), f"epoch {epoch + 1}/{self.args.epoches}")
        for images, labels, views in self.train_loader.epoch(epoch, with_views=True):
            out = self.step(ms.Tensor(images), ms.Tensor(labels), *self.extra_inputs(images, views)).asnumpy()
            step = dict(zip(STEP_OUTPUTS, map(float, out)))
            n = len(labels)
            for key in ("loss", "ce", "kd"):
                sums[key] += step[key] * n
            sums["correct"] += step["correct"]
            seen += n
            if not math.isfinite(step["loss"]):
                raise UserError(f"the loss became {step['loss']} in epoch {epoch + 1}: lower --lr "
                                f"(now {self.args.lr}) or keep the warm-up")
            bar.update(1)
            bar.set_postfix_str(f"loss {sums['loss'] / seen:.4f} acc {sums['correct'] / seen:.4f} "
                                f"{seen / (time.perf_counter() - started):.0f} img/s")
        bar.close()
        if self.dist:
            # Each rank saw its own slice of every batch: report statistics over all of them.
            *totals, seen = self.dist.all_sum([sums[k] for k in STEP_OUTPUTS] + [seen])
            sums = dict(zip(STEP_OUTPUTS, totals))
        seconds = time.perf_counter() - started
        return {"loss": sums["loss"] / seen, "ce": sums["ce"] / seen, "kd": sums["kd"] / seen,
                "train_acc": sums["correct"] / seen, "train_seconds": seconds, "img_per_s": seen / seconds}

    def fit(self):
        """Train from ``start_epoch`` to the last epoch; Ctrl-C (and the other ``STOP_SIGNALS``) stop
        cleanly after the last saved epoch."""
        self.log.begin()
        try:
            with StopSignals() as self.signals:
                for epoch in range(self.start_epoch, self.args.epoches):
                    self.run_epoch(epoch)
        except KeyboardInterrupt:
            done = self.history[-1]["epoch"] if self.history else 0
            where = (f"the state after epoch {done} is in {self.out.last}; continue with the same "
                     f"command plus --resume auto" if done else "no epoch was completed")
            raise Interrupted(f"interrupted; {where}") from None
        if self.rank == 0:
            save_atomic(self.net, self.out.ckpt)
        return self.history

    def run_epoch(self, epoch):
        started = time.perf_counter()
        record = {"epoch": epoch + 1, **self.train_epoch(epoch)}
        if self.dist:
            # BatchNorm's moving statistics are not reduced with the gradients: each rank tracked
            # its own slices. Averaging them keeps every rank's network identical.
            self.dist.average([p for p in self.net.get_parameters() if not p.requires_grad])
        record["lr"] = float(self.lr[min((epoch + 1) * len(self.train_loader), len(self.lr)) - 1])
        if self.rank != 0:
            return  # rank 0 alone evaluates, logs and saves (the other ranks' networks are equal)
        self.net.set_train(False)
        record["test_acc"] = evaluate(cell_forward(self.net), self.test_loader)[0]
        record["epoch_seconds"] = time.perf_counter() - started
        # The epoch's checkpoints, history and log line are written together or not at all.
        with self.signals.held():
            self.history.append(record)
            if record["test_acc"] > self.best_acc:
                self.best_acc, self.best_epoch = record["test_acc"], epoch + 1
                save_atomic(self.net, self.out.best)
            save_atomic(self.state_params(), self.out.last, self._state(epoch + 1))
            self.log.epoch(record, self.history)


# What a user's "stop" arrives as. Ctrl-C is SIGINT; on Linux MindSpore turns Ctrl-C during graph
# execution into SIGTERM. A Windows console delivers Ctrl-C as SIGINT and Ctrl-Break (also what a
# parent program sends a child in its own process group) as SIGBREAK; MindSpore leaves both to Python.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK")
                     if hasattr(signal, name))


class StopSignals:
    """Within ``with``: the ``STOP_SIGNALS`` raise KeyboardInterrupt, except inside ``held()``, where
    they wait until the block has finished."""

    def __enter__(self):
        self.holding, self.pending = False, False
        self.previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        for s in self.previous:
            signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame):
        if self.holding:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextmanager
    def held(self):
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending:
            raise KeyboardInterrupt
