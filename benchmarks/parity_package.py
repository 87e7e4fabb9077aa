"""The package's side of benchmarks/parity_torch.py: trains the reference's network with the package's
own code and measures, after every step, how far it is from PyTorch's float64 training.

    python benchmarks/parity_package.py --reference DIR --conv_engine onednn --summary FILE

One convolution engine per process (the engine is chosen once per process, src/device.py). The
initial weights are the reference's ``torch.save``-d state dict, read by the package's converter
(src/nets/torch_checkpoint.py); the step is the package's ``TrainStep`` with its ``DistillLoss`` (ATS),
``build_optimizer`` and ``build_schedule("step")``, as the trainers (src/training/) build them.
"""
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from parity_task import (EPOCHS, INIT_PTH, PARAMS64, PERTURBABLE, RECORD,  # noqa: E402  (path above)
                         batches_digest, make_batches, parse_net, perturbation, settings_of)
from src.errors import UserError, run_main  # noqa: E402
from src.kernels.engine import CONV_ENGINES  # noqa: E402
from src.run.cli import Parser  # noqa: E402


def load_reference(folder):
    """(settings, record, float64 trajectory) of a reference folder; UserError if one is missing."""
    paths = [os.path.join(folder, name) for name in (RECORD, PARAMS64, INIT_PTH)]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise UserError(f"--reference {folder}: {missing[0]} is missing (record one with "
                        f"benchmarks/parity_torch.py --record)")
    record = dict(np.load(paths[0]))
    return settings_of(record), record, np.load(paths[1], mmap_mode="r")


def relative(a, ref):
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


def flat(params, names):
    return np.concatenate([params[n].asnumpy().ravel() for n in names]).astype(np.float64)


def train_against(folder, perturb=(), log=print):
    """Train the reference's network with the package and compare every step with the reference.

    Runs on the process's convolution engine. ``perturb``: (key, value) settings to change from the
    reference's. Returns the per-step errors and the final BatchNorm running-statistic error.
    """
    import mindspore as ms

    from src.losses import DistillLoss
    from src.nets.models import build_network
    from src.nets.torch_checkpoint import load_torch_state, torch_name
    from src.training.optimizer import build_optimizer
    from src.training.schedules import build_schedule
    from src.training.train_step import TrainStep

    settings, record, trajectory = load_reference(folder)
    batches = make_batches(settings)
    if batches_digest(batches) != str(record["digest"]):
        raise UserError(f"--reference {folder}: this NumPy makes other batches from the recorded seed "
                        f"than the reference's")
    s = {**settings, **dict(perturb)}
    net_type, n_layer, width = parse_net(s["net"])
    net = build_network(net_type, n_layer, s["n_classes"], width)
    load_torch_state(net, os.path.join(folder, INIT_PTH), s["net"], flag="--reference")
    schedule = build_schedule("step", s["lr"], EPOCHS, s["steps_per_epoch"])
    optimizer = build_optimizer(net.trainable_params(), schedule, s["momentum"], s["weight_decay"])
    step = TrainStep(net, DistillLoss(s["lamb"], s["tp_tau"], s["t_tau"], s["s_tau"]), optimizer)
    step.set_train(True)
    params = {torch_name(p.name): p for p in net.get_parameters()}
    names, bn_names = [str(n) for n in record["param_names"]], [str(n) for n in record["bn_names"]]
    steps = []
    for i, (images, labels, t_logits) in enumerate(zip(*batches)):
        loss = float(step(ms.Tensor(images), ms.Tensor(labels.astype(np.int32)), ms.Tensor(t_logits))[0])
        ref_loss = float(record["losses64"][i])
        steps.append({"step": i + 1, "param_err": relative(flat(params, names), trajectory[i]),
                      "loss_err": abs(loss - ref_loss) / abs(ref_loss),
                      "torch32_param_err": float(record["param_err32"][i]),
                      "torch32_loss_err": abs(float(record["losses32"][i]) - ref_loss) / abs(ref_loss)})
        log(f"{s['net']} step {i + 1}/{len(trajectory)}: parameter error {steps[-1]['param_err']:.3g} "
            f"(PyTorch float32 {steps[-1]['torch32_param_err']:.3g}), loss error {steps[-1]['loss_err']:.3g} "
            f"(PyTorch float32 {steps[-1]['torch32_loss_err']:.3g})")
    return {"net": s["net"], "perturb": dict(perturb), "steps": steps,
            "bn_err": relative(flat(params, bn_names), record["bn64"]),
            "torch32_bn_err": float(record["bn_err32"])}


def main(argv=None):
    p = Parser(description="Train a parity reference's network with the package and compare (one engine).")
    p.add_argument("--reference", required=True, help="a folder written by parity_reference.py")
    p.add_argument("--conv_engine", default="auto", choices=CONV_ENGINES, help="the engine to train with")
    p.add_argument("--perturb", action="append", default=[], type=perturbation, metavar="KEY=NUMBER",
                   help=f"train with this setting changed from the reference's ({', '.join(PERTURBABLE)})")
    p.add_argument("--summary", required=True, help="the JSON file to write the comparison into")
    args = p.parse_args(argv)
    from src.device import setup_device
    from src.run.log import environment_info
    engine, note = setup_device("CPU", seed=0, conv_engine=args.conv_engine)
    if note:
        print(note, flush=True)
    summary = train_against(args.reference, args.perturb,
                            log=lambda line: print(f"{engine}: {line}", flush=True))
    summary.update(engine=engine, note=note, environment=environment_info("CPU", engine))
    with open(args.summary, "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    run_main(main)
