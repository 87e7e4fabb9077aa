"""Is a training step of the package the authors' one? Trains the same network from the same weights on
the same batches in PyTorch float32, PyTorch float64 (the reference) and the package (each
``--conv_engine``), and compares them step by step.

    python benchmarks/parity_torch.py --torch_python /path/to/torch-venv/bin/python
    (the PyTorch venv: python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy)

Run from the package's venv. PyTorch's side (parity_reference.py, in ``--torch_python``) builds each
``--net`` in the authors' module layout, saves its initial weights as the authors save a network,
and trains a float32 and a float64 copy the authors' way (their ATS loss, SGD with momentum and
weight decay on every parameter, the learning rate set per step to the recipe's warm-up and
milestones); BatchNorm in training mode. The package's side (parity_package.py, one process per
engine) converts those weights with the package's converter and trains with the package's own
``TrainStep``, ``DistillLoss``, ``build_optimizer`` and ``build_schedule("step")``. Every step
prints the package's distance from the float64 reference beside PyTorch float32's own: the global
relative parameter error ``||p - p_ref|| / ||p_ref||`` over all parameters and the relative loss
error; the end, a table with the BatchNorm running statistics' error too, and the package's
``--scheduler step`` checked against the recipe and the authors' code over a whole 240-epoch run.

Exit code 0: at every step the package's largest parameter and loss errors so far, and at the end
its BatchNorm statistics' error, are within ``--multiple`` times PyTorch float32's (default 10,
chosen from measurements: docs/parity.md), and its schedule is the recipe's (and the authors' code's
after the warm-up); 1: a mismatch (each one named); 2: a bad flag or file, or no PyTorch (one line).
``--record DIR`` keeps the references (``DIR/<net>/``); ``--reference DIR`` compares against a kept
one without PyTorch, with its settings; ``--perturb momentum=0.85`` trains the package with a wrong
setting, to see the comparison fail.
"""
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from parity_compare import FLOOR, compare_schedules, judge  # noqa: E402  (path above)
from parity_task import DEFAULTS, RECORD, add_task_flags, parse_net, perturbation, settings_of  # noqa: E402
from src.errors import UserError, run_main  # noqa: E402
from src.nets.models import check_network  # noqa: E402
from src.run.cli import Parser, positive  # noqa: E402
from src.storage.files import ensure_writable_dir, write_text_atomic  # noqa: E402

NETS, ENGINES = ("VGG8", "ResNet14"), ("auto", "mindspore")


def build_parser():
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--torch_python", default=sys.executable,
                   help="the Python of a venv with torch (default: this one)")
    p.add_argument("--net", action="append", default=None,
                   help=f"VGG8, ResNet<depth> or WRN<depth>-<width>; repeat for several "
                        f"(default: {', '.join(NETS)})")
    p.add_argument("--conv_engine", action="append", default=None, choices=("auto", "onednn", "mindspore"),
                   help="the package's engines to compare, each in its own process (default: auto, i.e. the "
                        "package's kernels where they can be used, and mindspore)")
    p.add_argument("--multiple", type=positive(float), default=10.0,
                   help="largest allowed ratio of the package's error to PyTorch float32's (default 10)")
    p.add_argument("--record", default=None, help="keep the PyTorch references in this folder (DIR/<net>/)")
    p.add_argument("--reference", action="append", default=None,
                   help="a kept reference folder to compare against instead of running PyTorch (its settings "
                        "apply; repeat for several)")
    p.add_argument("--perturb", action="append", default=[], type=perturbation, metavar="KEY=NUMBER",
                   help="train the package with this setting changed from the reference's (to see a "
                        "mismatch)")
    p.add_argument("--results", default=None, help="write the table and its settings to this JSON file")
    add_task_flags(p)
    return p


def check_nets(names):
    for name in names:
        spec = parse_net(name)
        if spec is None or (spec[0] == "VGG" and spec[1] != 8):
            raise UserError(f"--net {name}: expected VGG8, ResNet<depth> or WRN<depth>-<width> (the "
                            f"authors' PyTorch layouts of tests/fixtures/make_torch_fixtures.py)")
        check_network(spec[0], spec[1])


def check_torch(python):
    if not os.path.isfile(python):
        raise UserError(f"--torch_python {python}: no such file")
    if subprocess.run([python, "-c", "import torch"], capture_output=True).returncode:
        raise UserError(f"PyTorch is not available to {python}: pass --torch_python a Python with torch "
                        f"(python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy)")


def run_side(cmd, what):
    """Run one side in its own process (its output passes through); a UserError of its own is ours."""
    done = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, env=dict(os.environ, GLOG_v="3"))
    if done.returncode == 2 and done.stderr.strip():
        raise UserError(done.stderr.strip().splitlines()[-1].split("error: ", 1)[-1])
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise UserError(f"{what} failed (exit code {done.returncode}; its messages are above)")


def record_references(args, folder):
    check_torch(args.torch_python)
    task = [f"--{k}={getattr(args, k)}" for k in DEFAULTS]
    for net in args.net:
        run_side([args.torch_python, os.path.join(HERE, "parity_reference.py"), "--net", net,
                  "--out", os.path.join(folder, net), *task], "PyTorch's side")
    return [os.path.join(folder, net) for net in args.net]


def run_engines(reference, engines, perturb, work):
    """The package's summaries on ``reference``, one process per engine; an engine ``auto`` already
    resolved to is not run again."""
    summaries = []
    for engine in engines:
        if engine in {s["engine"] for s in summaries}:
            continue
        out = os.path.join(work, f"summary-{len(summaries)}.json")
        run_side([sys.executable, os.path.join(HERE, "parity_package.py"), "--reference", reference,
                  "--conv_engine", engine, "--summary", out, *(f"--perturb={k}={v}" for k, v in perturb)],
                 "the package's side")
        with open(out) as f:
            summaries.append(json.load(f))
    return summaries


def print_table(rows, multiple):
    print(f"\nrelative errors from PyTorch float64: the package's / PyTorch float32's; ratio: the worst "
          f"step's (largest errors so far; allowed: {multiple:g} x)")
    print(f"{'network':<9} {'engine':<9} {'parameters, final':<21} {'ratio':>7}  {'loss, largest':<21} "
          f"{'ratio':>7}  {'BN running stats':<21} {'ratio':>7}")
    for r in rows:
        cells = [f"{r[f'{k}_err']:.3g} / {r[f'torch32_{k}_err']:.3g}" for k in ("param", "loss", "bn")]
        ratios = [f"{r[f'{k}_ratio']:.3g}" for k in ("param", "loss", "bn")]
        print(f"{r['net']:<9} {r['engine']:<9} "
              + "  ".join(f"{c:<21} {q:>7}" for c, q in zip(cells, ratios)))


def print_schedule(net, result):
    print(f"{net}'s schedule ({result['epochs']} epochs x {result['steps_per_epoch']} steps): "
          f"--scheduler step against the recipe per step: largest relative difference "
          f"{result['recipe_max_relative']:.3g}; against the authors' code: "
          f"{result['authors_after_warmup_max_relative']:.3g} from the end of the warm-up on, up to "
          f"{result['authors_warmup_max_difference_over_lr']:.3g} x lr in the warm-up (their code raises "
          f"the rate once per epoch, the package every step)")


def write_results(path, args, argv, rows, schedules, summaries, settings):
    environment = summaries[0]["environment"] if summaries else {}
    results = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "command": shlex.join(["python", "benchmarks/parity_torch.py", *argv]),
               "machine": environment, "multiple": args.multiple, "floor": FLOOR, "settings": settings,
               "rows": rows, "schedules": schedules,
               "ok": all(r["ok"] for r in rows) and all(s["ok"] for s in schedules.values())}
    write_text_atomic(path, json.dumps(results, indent=1) + "\n")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.net = args.net or list(NETS)
    check_nets(args.net)
    if args.results:
        ensure_writable_dir(os.path.dirname(args.results) or ".", "--results")
    if args.record:
        ensure_writable_dir(args.record, "--record")
    with tempfile.TemporaryDirectory(prefix="ats-parity-") as work:
        references = args.reference or record_references(args, args.record or work)
        rows, mismatches, schedules, summaries, settings = [], [], {}, [], {}
        for reference in references:
            if not os.path.isfile(os.path.join(reference, RECORD)):
                raise UserError(f"--reference {reference}: no {RECORD} in it (record one with --record)")
            record = dict(np.load(os.path.join(reference, RECORD)))
            net_settings = settings_of(record)
            net = net_settings["net"]
            settings[net] = {**net_settings, "torch": str(record["torch_version"])}
            for summary in run_engines(reference, args.conv_engine or ENGINES, args.perturb, work):
                row, wrong = judge(summary, args.multiple)
                rows.append(row)
                mismatches += wrong
                summaries.append(summary)
                if summary["note"]:
                    print(summary["note"])
            schedules[net], wrong = compare_schedules(record, net_settings)
            mismatches += wrong
    print_table(rows, args.multiple)
    for net, result in schedules.items():
        print_schedule(net, result)
    if args.results:
        write_results(args.results, args, argv, rows, schedules, summaries, settings)
    for line in mismatches:
        print(f"MISMATCH {line}")
    print("parity: " + ("MISMATCH" if mismatches else "ok"))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
