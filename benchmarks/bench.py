"""Throughput of the package's training, distillation and evaluation on this machine's CPU.

    python benchmarks/bench.py [CASE ...]        (no case: all of them)

Every case runs the package's own code path (``Classify``/``Distill`` trainers and their compiled
``TrainStep``, the teacher from ``load_teacher``, ``BatchLoader`` batches) on generated data of
CIFAR-100's size (32x32, 100 classes), in a fresh process of its own so that its peak memory is its
own. Step cases: a warm-up (graph compilation), then the median time of ``--steps`` steps. The
FLOP-based limit is the machine's measured float32 GEMM rate (NumPy matmul) divided by the FLOPs one
image needs: forward = 2 x multiply-adds of the convolutions and linear layers, a training step
3 x forward, a distillation step the student's training step plus the teacher's forward (a
``_cached`` step, whose teacher logits come from a full teacher cache, only the student's).
One line per case: ``case=... img_per_s=... peak_mb=... limit_img_per_s=... fraction=...``; with
``--json PATH`` also a result file (benchmarks/results_file.py) that the docs' tables are rendered from.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))   # network_shapes: the layers' feature-map sides

# case -> (kind, network(s)); a network is (--net, --n_layer) or (--net, --n_layer, --width).
# ``distill_cached``: the step with the teacher's logits read from a full teacher cache;
# ``epoch_filling``: a live epoch, then the same epoch again filling an empty teacher cache.
CASES = {
    "distill_r14_vgg8": ("distill", ("ResNet", 14), ("VGG", 8)),
    "distill_r110_vgg8": ("distill", ("ResNet", 110), ("VGG", 8)),
    "distill_r110_vgg8_cached": ("distill_cached", ("ResNet", 110), ("VGG", 8)),
    "distill_wrn28_8_vgg8": ("distill", ("WRN", 28, 8), ("VGG", 8)),
    "distill_wrn28_8_vgg8_cached": ("distill_cached", ("WRN", 28, 8), ("VGG", 8)),
    "train_vgg8": ("train", ("VGG", 8)),
    "train_r110": ("train", ("ResNet", 110)),
    "eval_r110": ("eval", ("ResNet", 110)),
    "teacher_r110": ("teacher", ("ResNet", 110)),
    "epoch_distill_r110_vgg8": ("epoch", ("ResNet", 110), ("VGG", 8)),
    "epoch_distill_r110_vgg8_filling": ("epoch_filling", ("ResNet", 110), ("VGG", 8)),
}
N_CLASSES = 100
def peak_mb():
    """Peak resident memory of this process, MB (None where ``resource`` is missing: Windows)."""
    try:
        import resource
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average():
    """One-minute load average, rounded (None on Windows, which has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def sgemm_gflops(n=2048, repeats=20):
    """Best float32 matrix-multiply rate of NumPy's BLAS on this machine (all cores), GFLOP/s; the
    best of many short runs, so that a busy moment of a shared machine does not lower it."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.T.copy()
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def forward_flops(kind, net):
    """FLOPs of one image's forward pass: 2 x multiply-adds of every convolution and linear layer."""
    from mindspore import nn
    from network_shapes import feature_side
    macs = 0
    for name, cell in net.cells_and_names():
        if isinstance(cell, nn.Conv2d):
            side = feature_side(kind, name)
            macs += cell.weight.size * side * side
        elif isinstance(cell, nn.Dense):
            macs += cell.weight.size
    return 2 * macs


def network(spec):
    from src.nets.models import build_network
    return build_network(spec[0], spec[1], N_CLASSES, *spec[2:])


# -- one case, in its own process ----------------------------------------------------------------
def generated_loaders(n_train, n_test, batch_size, eval_batch_size):
    """``BatchLoader``s over random uint8 images with CIFAR-100's shape, labels and normalisation."""
    from src.data import DATASETS, BatchLoader, Normalizer
    rng = np.random.default_rng(0)
    info = DATASETS["cifar100"]
    norm = Normalizer(info.mean, info.std)

    def split(n):
        return (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                rng.integers(0, N_CLASSES, n).astype(np.int32))
    return (BatchLoader(*split(n_train), batch_size, norm, train=True, seed=0),
            BatchLoader(*split(n_test), eval_batch_size, norm, train=False))


def make_teacher(net, opts, workdir):
    """``load_teacher`` on a checkpoint of a freshly initialised network (speed does not depend on
    the weights' values)."""
    from src.storage.checkpoint import save_atomic
    from src.teacher.frozen import load_teacher, resolve_engine
    ckpt = os.path.join(workdir, "teacher.ckpt")
    save_atomic(network(net), ckpt)
    engine, _ = resolve_engine(opts.teacher_engine)
    width = net[2] if len(net) > 2 else 1
    return load_teacher(net[0], net[1], N_CLASSES, width, ckpt, engine=engine, fold_bn=opts.fold_bn), ckpt


def make_trainer(nets, train, test, opts, workdir):
    """A ``Classify`` (one network) or ``Distill`` (teacher, student) trainer, configured by the
    entry point's own parser and defaults."""
    import run_classify
    import run_distill
    from src.run.config import resolve_run
    from src.run.log import RunLog
    from src.training.classify import Classify
    from src.training.distill import Distill
    student = nets[-1]
    # Two epochs plus the timed steps: the learning-rate schedule must cover every step taken.
    epochs = 2 + -(-(opts.warmup + opts.steps) // len(train))
    flags = ["--net", student[0], "--n_layer", str(student[1]), "--ckpt_dir", workdir,
             "--log_dir", workdir, "--batch_size", str(opts.batch_size),
             "--eval_batch_size", str(opts.eval_batch_size), "--epoches", str(epochs), "--seed", "0",
             "--ckpt_name", "bench.ckpt"]
    net = network(student)
    log = RunLog(None, None, None, enabled=False)
    if len(nets) == 1:
        config = resolve_run(run_classify.build_parser().parse_args(flags))
        return Classify(net, train, test, config.args, config.files, log)
    teacher, ckpt = make_teacher(nets[0], opts, workdir)
    config = resolve_run(run_distill.build_parser().parse_args(
        flags + ["--t_net", nets[0][0], "--t_n_layer", str(nets[0][1]),
                 "--t_width", str(nets[0][2] if len(nets[0]) > 2 else 1), "--t_ckpt", ckpt]), distill=True)
    return Distill(net, teacher, train, test, config.args, config.files, log)


def empty_cache(teacher, train, workdir):
    """An empty teacher cache of the training images in ``workdir``, in front of ``teacher``."""
    from src.teacher.cache import CachedTeacher, Layout, open_store
    path = os.path.join(workdir, f"teacher-{time.monotonic_ns()}.logits")
    store = open_store(path, Layout(len(train.labels), 0, N_CLASSES), {"bench": path}, print)
    return CachedTeacher(teacher, store, "train", print)


def time_steps(trainer, batches, warmup, steps):
    """Median and shortest seconds of a training step as ``Classify.train_epoch`` runs it (teacher
    forward, step, statistics read back), and the median of its teacher forward alone."""
    import mindspore as ms
    trainer.step.set_train(True)
    total, teacher = [], []
    for i in range(warmup + steps):
        images, labels, views = batches[i % len(batches)]
        start = time.perf_counter()
        extra = trainer.extra_inputs(images, views)
        mid = time.perf_counter()
        trainer.step(ms.Tensor(images), ms.Tensor(labels), *extra).asnumpy()
        if i >= warmup:
            total.append(time.perf_counter() - start)
            teacher.append(mid - start)
    return statistics.median(total), min(total), statistics.median(teacher)


def time_forward(forward, batches, warmup, steps):
    """Median and shortest seconds of one forward as ``evaluate`` runs it (NumPy in, NumPy logits out)."""
    times = []
    for i in range(warmup + steps):
        images = batches[i % len(batches)][0]
        start = time.perf_counter()
        forward(images)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def run_case(case, opts):
    """Measure one case in this process; returns its fields (img_per_s, gflop_per_img, ...)."""
    from src.device import setup_device
    engine, note = setup_device("CPU", 0, conv_engine=opts.conv_engine)
    if note:
        print(note, file=sys.stderr)
    kind, *nets = CASES[case]
    flops = [forward_flops(n[0], network(n)) for n in nets]
    fields = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        if kind in ("eval", "teacher"):
            size = opts.eval_batch_size if kind == "eval" else opts.batch_size
            batches = list(generated_loaders(1, 2 * size, size, size)[1].epoch())
            if kind == "eval":
                from src.training.evaluate import cell_forward
                net = network(nets[0])
                net.set_train(False)
                forward = cell_forward(net)
            else:
                forward = make_teacher(nets[0], opts, workdir)[0]
            median, best = time_forward(forward, batches, opts.warmup, opts.steps)
            fields["img_per_s"], fields["best_img_per_s"] = size / median, size / best
            per_image = flops[0]
        else:
            # Training FLOPs: the student's forward and backward (3 x forward), the teacher's forward
            # (none when a full cache serves the teacher's logits).
            per_image = 3 * flops[-1] + (0 if kind == "distill_cached" else sum(flops[:-1]))
            n_train = opts.epoch_train if kind.startswith("epoch") else 4 * opts.batch_size
            train, test = generated_loaders(n_train, opts.epoch_test, opts.batch_size,
                                            opts.eval_batch_size)
            trainer = make_trainer(nets, train, test, opts, workdir)
            batches = list(train.epoch(0, with_views=True))[:4]
            if kind == "distill_cached":
                trainer.cache = empty_cache(trainer.teacher, train, workdir)
                for images, _, views in batches:
                    trainer.extra_inputs(images, views)     # the timed steps then read every row
            if kind == "epoch_filling":
                # The last epoch of the schedule twice after a compiling one: live, then filling an
                # empty cache (the same views, so every row is missing at first).
                trainer.start_epoch = trainer.args.epoches - 2
                trainer.fit()
                live = trainer.history[-1]
                trainer.cache = empty_cache(trainer.teacher, train, workdir)
                trainer.start_epoch = trainer.args.epoches - 1
                trainer.fit()
                filling = trainer.history[-1]
                fields["img_per_s"] = n_train / filling["epoch_seconds"]
                fields["live_img_per_s"] = n_train / live["epoch_seconds"]
                fields["of_live"] = fields["img_per_s"] / fields["live_img_per_s"]
                fields["served"] = filling["teacher_cache_served"]
                per_image += flops[-1] * opts.epoch_test / n_train
            elif kind == "epoch":
                # fit() runs the last two epochs of the schedule: the first compiles every graph,
                # the second is timed; the schedule still covers the pure steps timed after them.
                trainer.start_epoch = trainer.args.epoches - 2
                trainer.fit()
                record = trainer.history[-1]
                step_s, _, _ = time_steps(trainer, batches, 1, opts.steps)
                fields["img_per_s"] = n_train / record["epoch_seconds"]
                fields["train_img_per_s"] = record["img_per_s"]
                fields["step_img_per_s"] = opts.batch_size / step_s
                fields["of_step"] = fields["img_per_s"] / fields["step_img_per_s"]
                per_image += flops[-1] * opts.epoch_test / n_train     # the evaluation's forwards
            else:
                step_s, best_s, teacher_s = time_steps(trainer, batches, opts.warmup, opts.steps)
                fields["img_per_s"] = opts.batch_size / step_s
                fields["best_img_per_s"] = opts.batch_size / best_s
                fields["step_ms"] = 1000 * step_s
                if kind.startswith("distill"):
                    fields["teacher_ms"] = 1000 * teacher_s     # the cache's read when cached
    fields["conv_engine"] = engine
    fields["peak_mb"] = peak_mb()
    # The machine may be shared: its load and GEMM rate right after the timing say how much.
    fields["load"] = load_average()
    fields["sgemm_after"] = sgemm_gflops(repeats=3)
    fields["gflop_per_img"] = per_image / 1e9
    return fields


# -- the driver --------------------------------------------------------------------------------------
def build_parser():
    from src.run.cli import Parser, add_conv_engine_flag, positive, str2bool
    from src.teacher.frozen import TEACHER_ENGINES
    p = Parser(description="Images per second of the package's steps on generated CIFAR-size data.")
    p.add_argument("cases", nargs="*", metavar="CASE",
                   help=f"cases to run (default: all): {', '.join(CASES)}")
    p.add_argument("--steps", type=positive(int), default=8, help="timed steps per case (median)")
    p.add_argument("--warmup", type=positive(int), default=2, help="untimed steps first (compilation)")
    p.add_argument("--batch_size", type=positive(int), default=128, help="training batch size")
    p.add_argument("--eval_batch_size", type=positive(int), default=500,
                   help="evaluation batch size (eval_* and the epoch case)")
    p.add_argument("--teacher_engine", default="auto", choices=TEACHER_ENGINES,
                   help="what runs the frozen teacher (as run_distill.py's flag)")
    add_conv_engine_flag(p)
    p.add_argument("--fold_bn", type=str2bool, default=True,
                   help="fold the MindSpore teacher's BatchNorm into its convolutions")
    p.add_argument("--epoch_train", type=positive(int), default=2560,
                   help="training images of the epoch case")
    p.add_argument("--epoch_test", type=positive(int), default=500,
                   help="test images of the epoch case (CIFAR's 5:1 ratio by default)")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)   # worker process
    p.add_argument("--sgemm", type=float, default=None,
                   help="GEMM rate to use, GFLOP/s (default: measured)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the results, with the machine, date and command, to this JSON file")
    return p


def case_result(fields, gflops):
    """The case's fields with its FLOP-based limit and the fraction of it reached, limit first."""
    limit = gflops / fields["gflop_per_img"]
    head = {"img_per_s": fields["img_per_s"], "peak_mb": fields["peak_mb"], "limit_img_per_s": limit,
            "fraction": fields["img_per_s"] / limit}
    return {**head, **{k: v for k, v in fields.items() if k not in head}}


def case_line(case, result):
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in {"case": case, **result}.items())


def versions():
    from importlib import metadata

    from src import __version__
    found = {"package": __version__}
    for name in ("mindspore", "onnxruntime", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def main(argv=None):
    from src.errors import UserError
    opts = build_parser().parse_args(argv)
    unknown = [c for c in opts.cases if c not in CASES]
    if unknown:
        raise UserError(f"unknown case {unknown[0]!r}: expected some of {', '.join(CASES)}")
    if opts.one:
        print(json.dumps(run_case(opts.cases[0], opts)))
        return
    gflops = opts.sgemm or sgemm_gflops()
    print(f"# sgemm {gflops:.1f} GFLOP/s (NumPy float32 2048x2048 matmul, best of 20); "
          f"{os.cpu_count()} cores; load average {load_average()}", flush=True)
    flags = [f"--{k}={v}" for k, v in vars(opts).items()
             if k not in ("cases", "one", "sgemm") and v is not None]
    flags = [f for f in flags if not f.startswith("--json=")]
    env = dict(os.environ, GLOG_v="3")
    results = {}
    for case in opts.cases or list(CASES):
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), case, "--one", *flags],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(f"case={case} error={tail!r}", flush=True)
            results[case] = {"error": tail}
            continue
        results[case] = case_result(json.loads(proc.stdout.strip().splitlines()[-1]), gflops)
        print(case_line(case, results[case]), flush=True)
    if opts.json:
        from results_file import write_results
        settings = {k: v for k, v in vars(opts).items() if k not in ("cases", "one", "json")}
        write_results(opts.json, "bench.py", settings, versions(), results, gflops)


if __name__ == "__main__":
    from src.errors import run_main
    run_main(main)
