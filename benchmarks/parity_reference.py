"""The PyTorch side of benchmarks/parity_torch.py (run by it, in a venv with torch): the reference.

    /path/to/torch-venv/bin/python benchmarks/parity_reference.py --net ResNet14 --out DIR [task flags]

Builds the network in the authors' module layout (tests/fixtures/make_torch_fixtures.py), randomly
initialised there (BatchNorm's affine parameters and running statistics too, so a swapped tensor
shows), saves it as the authors save a network (``torch.save(model.state_dict())``: what the
package's converter reads), and trains a float32 and a float64 copy in lockstep on the task's
batches (parity_task.py) the authors' way: the ATS loss of their distill.py, ``torch.optim.SGD``
(momentum, weight decay on every parameter) and the learning rate set per step by ``LambdaLR`` to
the recipe's schedule. Writes into DIR (parity_task's file names) the float64 parameters after every
step, the losses, float32's distance from float64, the BatchNorm running statistics after the last
step, and the whole 240-epoch schedule both per step (the recipe) and as the authors' code steps it.
"""
import argparse
import copy
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "fixtures"))
from make_torch_fixtures import VGG, VGG8, ResNet, WideResNet, randomise  # noqa: E402  (path above)
from parity_task import (EPOCHS, GAMMA, INIT_PTH, MILESTONES, PARAMS64, RECORD,  # noqa: E402
                         WARMUP_EPOCHS, add_task_flags, batches_digest, make_batches, parse_net,
                         task_settings)

BN_STATS = ("running_mean", "running_var")


def build(settings):
    net, n_layer, width = parse_net(settings["net"])
    classes = settings["n_classes"]
    if net == "VGG":   # the fixtures hold VGG8's channels only (the driver refuses other depths)
        return VGG(VGG8, classes)
    return ResNet(n_layer, classes) if net == "ResNet" else WideResNet(n_layer, width, classes)


def ats_loss(logits, t_logits, labels, s):
    """``(1 - lamb) CE + lamb s_tau^2 mean_i sum_c -p_t log softmax(z_s / s_tau)``, ``p_t`` the
    teacher's softmax at ``tp_tau`` on the correct class and ``t_tau`` elsewhere."""
    taus = torch.full_like(t_logits, s["t_tau"])
    taus[torch.arange(len(labels)), labels] = s["tp_tau"]
    p_t = (t_logits / taus).softmax(dim=1)
    kd = s["s_tau"] ** 2 * (-p_t * (logits / s["s_tau"]).log_softmax(dim=1)).sum(dim=1).mean()
    return (1.0 - s["lamb"]) * F.cross_entropy(logits, labels) + s["lamb"] * kd


def recipe_factor(step, steps_per_epoch):
    """The recipe per step: linear warm-up over ``WARMUP_EPOCHS`` (the base rate at its last step),
    then x ``GAMMA`` at each milestone epoch."""
    warm = min(1.0, (step + 1) / (WARMUP_EPOCHS * steps_per_epoch))
    return warm * GAMMA ** sum(step >= m * steps_per_epoch for m in MILESTONES)


def authors_factor(epoch):
    """The authors' code (tools.py, scheduler WSKDLR, ws_step 5; ``LambdaLR`` stepped once per
    epoch): epoch t <= 5 at t/5 (epoch 0 at 2e-7), 1 up to epoch 120, then x0.1 every 30 epochs."""
    if epoch <= WARMUP_EPOCHS:
        return (epoch + 1e-6) / WARMUP_EPOCHS
    return 1.0 if epoch <= 120 else GAMMA ** int((epoch - 120) / 30)


class Trainer:
    """One copy of the network, in ``dtype``, with the authors' optimiser and a per-step LambdaLR."""

    def __init__(self, model, dtype, s):
        self.model, self.dtype, self.s = model.to(dtype).train(), dtype, s
        self.opt = torch.optim.SGD(model.parameters(), lr=s["lr"], momentum=s["momentum"],
                                   weight_decay=s["weight_decay"])
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda step: recipe_factor(step, s["steps_per_epoch"]))

    def step(self, images, labels, t_logits):
        """One step; returns its loss and the learning rate it used."""
        lr = self.opt.param_groups[0]["lr"]
        loss = ats_loss(self.model(images.to(self.dtype)), t_logits.to(self.dtype), labels, self.s)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss.item(), lr

    def params(self):
        return torch.cat([p.detach().double().flatten() for p in self.model.parameters()]).numpy()

    def bn_stats(self):
        return torch.cat([b.double().flatten() for n, b in self.model.named_buffers()
                          if n.endswith(BN_STATS)]).numpy()


def relative(a, ref):
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


def record(settings, out):
    torch.manual_seed(settings["seed"])
    model = randomise(build(settings))
    torch.save(model.state_dict(), os.path.join(out, INIT_PTH))
    f32, f64 = Trainer(model, torch.float32, settings), Trainer(copy.deepcopy(model), torch.float64, settings)
    batches = make_batches(settings)
    steps = settings["steps"]
    names = [n for n, _ in model.named_parameters()]
    trajectory = np.lib.format.open_memmap(os.path.join(out, PARAMS64), "w+", np.float64,
                                           (steps, sum(p.numel() for p in model.parameters())))
    losses, rates, errors = np.zeros((2, steps)), np.zeros(steps), np.zeros(steps)
    for i, (images, labels, t_logits) in enumerate(zip(*map(torch.from_numpy, batches))):
        (losses[0, i], rates[i]), (losses[1, i], _) = (f.step(images, labels, t_logits) for f in (f32, f64))
        trajectory[i] = f64.params()
        errors[i] = relative(f32.params(), trajectory[i])
        print(f"{settings['net']} PyTorch step {i + 1}/{steps}: float32's parameter error {errors[i]:.3g}, "
              f"loss {losses[1, i]:.6f}", flush=True)
    trajectory.flush()
    bn_names = [n for n, _ in model.named_buffers() if n.endswith(BN_STATS)]
    whole = EPOCHS * settings["schedule_steps_per_epoch"]
    np.savez(os.path.join(out, RECORD), settings=json.dumps(settings), torch_version=torch.__version__,
             digest=batches_digest(batches), param_names=np.array(names),
             param_sizes=[p.numel() for p in model.parameters()], bn_names=np.array(bn_names),
             losses32=losses[0], losses64=losses[1], param_err32=errors, lr_steps=rates,
             bn64=f64.bn_stats(), bn_err32=relative(f32.bn_stats(), f64.bn_stats()),
             schedule_recipe=[settings["lr"] * recipe_factor(i, settings["schedule_steps_per_epoch"])
                              for i in range(whole)],
             schedule_authors=np.repeat([settings["lr"] * authors_factor(e) for e in range(EPOCHS)],
                                        settings["schedule_steps_per_epoch"]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", required=True, help="VGG8, ResNet<depth> or WRN<depth>-<width>")
    p.add_argument("--out", required=True, help="folder to write the reference into")
    add_task_flags(p)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    record(task_settings(args, args.net), args.out)


if __name__ == "__main__":
    main()
