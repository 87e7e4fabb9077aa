"""The PyTorch reference for benchmarks/bench.py: the same step cases, written the way a careful
PyTorch user would, so that both frameworks can be compared in one run on one machine (the speed of
a shared machine drifts by 20% from one day to the next, so figures from another day do not compare).

    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
    /tmp/torchvenv/bin/python benchmarks/bench_torch.py [CASE ...]     (no case: all of them)

Not part of the package (torch is not one of its requirements). The networks are the PyTorch
modules of tests/fixtures/make_torch_fixtures.py (the authors' architectures). A distillation step
runs the frozen teacher in eval mode under ``torch.inference_mode`` and the student's forward,
cross-entropy plus the temperature-scaled KL term, backward and SGD (momentum 0.9, weight decay 5e-4)
step; a training step the same without the teacher; ``eval_r110`` an eval-mode forward. Random
normalised batches of CIFAR's shape; a warm-up, then the median of ``--steps`` steps.
One line per case, as bench.py's: ``case=... img_per_s=... best_img_per_s=... step_ms=...``; with
``--json PATH`` also a result file as bench.py's (benchmarks/results_file.py).
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "fixtures"))
from make_torch_fixtures import VGG, VGG8, ResNet  # noqa: E402  (the path above is where they live)

N_CLASSES = 100
NETS = {"r14": lambda: ResNet(14, N_CLASSES), "r110": lambda: ResNet(110, N_CLASSES),
        "vgg8": lambda: VGG(VGG8, N_CLASSES)}
CASES = {"distill_r14_vgg8": ("r14", "vgg8"), "distill_r110_vgg8": ("r110", "vgg8"),
         "train_vgg8": (None, "vgg8"), "train_r110": (None, "r110"), "eval_r110": ("r110", None)}


def kd_loss(logits, teacher_logits, labels, tau=4.0, lamb=0.5):
    """Cross-entropy plus tau^2-scaled KL to the teacher's softened distribution (TS)."""
    kl = F.kl_div(F.log_softmax(logits / tau, 1), F.softmax(teacher_logits / tau, 1),
                  reduction="batchmean")
    return (1 - lamb) * F.cross_entropy(logits, labels) + lamb * tau * tau * kl


def step_seconds(case, batch_size, warmup, steps, eval_batch_size):
    """Median and shortest seconds of one step of ``case``, and the images each step sees."""
    teacher_name, student_name = CASES[case]
    gen = torch.Generator().manual_seed(0)
    size = eval_batch_size if student_name is None else batch_size
    images = torch.randn(size, 3, 32, 32, generator=gen)
    labels = torch.randint(0, N_CLASSES, (size,), generator=gen)
    teacher = NETS[teacher_name]().eval() if teacher_name else None
    if student_name is None:
        def step():
            with torch.inference_mode():
                teacher(images)
    else:
        student = NETS[student_name]().train()
        opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

        def step():
            logits = student(images)
            if teacher is None:
                loss = F.cross_entropy(logits, labels)
            else:
                with torch.inference_mode():
                    t_logits = teacher(images)
                # An inference-mode tensor cannot be saved for backward: clone it out first.
                loss = kd_loss(logits, t_logits.clone(), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), size


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cases", nargs="*", metavar="CASE", help=f"default all: {', '.join(CASES)}")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--eval_batch_size", type=int, default=500)
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the results, with the machine, date and command, to this JSON file")
    opts = p.parse_args()
    unknown = [c for c in opts.cases if c not in CASES]
    if unknown:
        p.error(f"unknown case {unknown[0]!r}: expected some of {', '.join(CASES)}")
    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    results = {}
    for case in opts.cases or list(CASES):
        median, best, size = step_seconds(case, opts.batch_size, opts.warmup, opts.steps,
                                          opts.eval_batch_size)
        results[case] = {"img_per_s": size / median, "best_img_per_s": size / best, "step_ms": 1000 * median}
        print(f"case={case} img_per_s={size / median:.4g} best_img_per_s={size / best:.4g} "
              f"step_ms={1000 * median:.4g}", flush=True)
    if opts.json:
        from results_file import write_results
        settings = {k: v for k, v in vars(opts).items() if k not in ("cases", "json")}
        write_results(opts.json, "bench_torch.py", settings,
                      {"torch": torch.__version__, "threads": torch.get_num_threads()}, results)


if __name__ == "__main__":
    main()
