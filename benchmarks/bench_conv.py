"""Per-layer convolution speed: MindSpore's nn.Conv2d, the package's oneDNN kernel, and PyTorch, in
one run on one machine.

    python benchmarks/bench_conv.py [--torch_python /path/to/venv-with-torch/bin/python]

Every convolution shape of VGG8 and of the CIFAR ResNets at batch 128. For each: the forward alone,
and a training pass (forward, input gradient, weight gradient) as ``y = conv(x)`` then the backward
pass with ``dy`` as the output's gradient; the median of ``--steps`` after a warm-up. Each engine runs in a process of its
own: MindSpore's convolution needs oneDNN capped at AVX2 on AVX-512 processors (see src/device.py),
the package's kernel runs without the cap, and PyTorch needs its own interpreter (torch is not one
of the package's requirements; without --torch_python its columns are left out). Prints one line per
layer and engine (``layer=... engine=... forward_ms=... train_ms=... train_gflops=...``), then a table.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 128
# name -> (in channels, out channels, kernel, stride, padding, input side, input gradient needed)
LAYERS = {
    "vgg8.block0": (3, 64, 3, 1, 1, 32, False),
    "vgg8.block1": (64, 128, 3, 1, 1, 16, True),
    "vgg8.block2": (128, 256, 3, 1, 1, 8, True),
    "vgg8.block3": (256, 512, 3, 1, 1, 4, True),
    "vgg8.block4": (512, 512, 3, 1, 1, 4, True),
    "resnet.conv1": (3, 16, 3, 1, 1, 32, False),
    "resnet.layer1": (16, 16, 3, 1, 1, 32, True),
    "resnet.layer2.down": (16, 32, 3, 2, 1, 32, True),
    "resnet.layer2": (32, 32, 3, 1, 1, 16, True),
    "resnet.layer3.down": (32, 64, 3, 2, 1, 16, True),
    "resnet.layer3": (64, 64, 3, 1, 1, 8, True),
    "resnet.shortcut2": (16, 32, 1, 2, 0, 32, True),
    "resnet.shortcut3": (32, 64, 1, 2, 0, 16, True),
}
ENGINES = ("mindspore", "onednn", "torch")


def flops(cin, cout, kernel, stride, padding, side, input_grad):
    out = (side + 2 * padding - kernel) // stride + 1
    forward = 2 * BATCH * cout * out * out * cin * kernel * kernel
    return forward, forward * (3 if input_grad else 2)


def median_ms(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def mindspore_timers(engine):
    """(forward, train) callables per layer, on ``engine``'s convolutions."""
    sys.path.insert(0, ROOT)
    import numpy as np
    from src.device import setup_device
    chosen, note = setup_device("CPU", 0, conv_engine=engine)
    if chosen != engine:
        raise SystemExit(f"{engine}: not available here ({note})")
    import mindspore as ms
    from mindspore import nn, ops
    from src.kernels.engine import conv2d

    class TrainPass(nn.Cell):
        """Forward and backward of ``conv`` with ``dy`` as the output's gradient (sens), as inside a
        network: returns the output (else the forward, which the gradients do not need, would be
        left out) and the gradients (the input's too if ``input_grad``)."""

        def __init__(self, conv, input_grad):
            super().__init__()
            self.conv, self.weights = conv, ms.ParameterTuple(conv.trainable_params())
            self.grad = ops.GradOperation(get_all=input_grad, get_by_list=True, sens_param=True)

        def construct(self, x, dy):
            return self.conv(x), self.grad(self.conv, self.weights)(x, dy)

    def timers(cin, cout, kernel, stride, padding, side, input_grad):
        pad = dict(pad_mode="pad", padding=padding) if padding else dict(pad_mode="valid")
        conv = conv2d(cin, cout, kernel, stride=stride, input_grad=input_grad, **pad)
        rng = np.random.default_rng(0)
        x = ms.Tensor(rng.standard_normal((BATCH, cin, side, side)).astype(np.float32))
        y = conv(x)
        dy = ms.Tensor(rng.standard_normal(y.shape).astype(np.float32))
        step = TrainPass(conv, input_grad)

        def train():
            y, grads = step(x, dy)
            y.asnumpy()
            grads[-1][0].asnumpy()
        return (lambda: conv(x).asnumpy()), train
    return timers


def torch_timers():
    import torch
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())

    def timers(cin, cout, kernel, stride, padding, side, input_grad):
        conv = torch.nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        x = torch.randn(BATCH, cin, side, side, requires_grad=input_grad)
        dy = torch.randn_like(conv(x))

        def forward():
            with torch.no_grad():
                conv(x)

        def train():
            conv.zero_grad(set_to_none=True)
            conv(x).backward(dy)
        return forward, train
    return timers


def worker(engine, warmup, steps):
    timers = torch_timers() if engine == "torch" else mindspore_timers(engine)
    for name, spec in LAYERS.items():
        forward, train = timers(*spec)
        fwd_flops, train_flops = flops(*spec)
        f_ms, t_ms = median_ms(forward, warmup, steps), median_ms(train, warmup, steps)
        print(json.dumps({"layer": name, "engine": engine, "forward_ms": f_ms, "train_ms": t_ms,
                          "forward_gflops": fwd_flops / f_ms / 1e6, "train_gflops": train_flops / t_ms / 1e6}),
              flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--torch_python", default=None, help="a Python interpreter with torch installed")
    p.add_argument("--steps", type=int, default=10, help="timed repetitions per layer (median)")
    p.add_argument("--warmup", type=int, default=3, help="untimed repetitions first")
    p.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.worker:
        worker(opts.worker, opts.warmup, opts.steps)
        return
    results = {}
    env = dict(os.environ, GLOG_v="3")
    env.pop("ONEDNN_MAX_CPU_ISA", None)   # each engine sets what it needs
    for engine in ENGINES:
        python = opts.torch_python if engine == "torch" else sys.executable
        if python is None:
            continue
        proc = subprocess.run([python, os.path.abspath(__file__), "--worker", engine, "--steps", str(opts.steps),
                               "--warmup", str(opts.warmup)], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"engine={engine} error={(proc.stderr.strip().splitlines() or ['?'])[-1]!r}", flush=True)
            continue
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                results[r["layer"], engine] = r
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()),
                      flush=True)
    engines = [e for e in ENGINES if any(k[1] == e for k in results)]
    print("\n| layer (batch 128) | " + " | ".join(f"{e} fwd / train ms (train GFLOP/s)" for e in engines)
          + (" | onednn speed vs mindspore | onednn speed vs torch |" if {"onednn", "mindspore"} <= set(engines) else " |"))
    print("|---" * (1 + len(engines) + 2 * ({"onednn", "mindspore"} <= set(engines))) + "|")
    for name in LAYERS:
        cells = []
        for e in engines:
            r = results.get((name, e))
            cells.append(f"{r['forward_ms']:.1f} / {r['train_ms']:.1f} ({r['train_gflops']:.0f})" if r else "")
        row = f"| {name} | " + " | ".join(cells) + " |"
        if {"onednn", "mindspore"} <= set(engines) and (name, "onednn") in results:
            ours = results[name, "onednn"]["train_ms"]
            row += f" {results[name, 'mindspore']['train_ms'] / ours:.2f}x |"
            row += f" {results[name, 'torch']['train_ms'] / ours:.2f}x |" if (name, "torch") in results else " |"
        print(row)


if __name__ == "__main__":
    main()
