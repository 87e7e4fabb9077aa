"""Renders the docs' measured tables from the benchmarks' result files, so no figure is typed by hand.

    python benchmarks/render_tables.py            rewrite every table in README.md and docs/*.md
    python benchmarks/render_tables.py --check    exit 1 if a table differs from its result files

A table is declared in the Markdown by a comment naming its kind and result files (relative to
docs/results/), and the renderer owns everything up to the closing comment:

    <!-- table speed: linux-onednn.json linux-mindspore.json linux-torch.json -->
    ...
    <!-- end table -->

Kinds: ``speed`` (the package's kernels against MindSpore's and PyTorch, with the fraction of the
FLOP limit), ``cache`` (a teacher-cache run: cached steps against live ones), ``platforms`` (the same
cases on two operating systems), ``parity`` (benchmarks/parity_torch.py's errors from PyTorch float64). Several files of one role (two runs of the package, say) are shown as
their median. Each table ends with where, when and by which command its files were measured.
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "results")
TABLE = re.compile(r"(<!-- table (\w+): ([^>]*?) -->\n)(.*?)(<!-- end table -->)", re.S)

CASE_NAMES = {
    "train_vgg8": "VGG8 training step",
    "train_r110": "ResNet110 training step",
    "distill_r14_vgg8": "ResNet14 -> VGG8 distillation step",
    "distill_r110_vgg8": "ResNet110 -> VGG8 distillation step",
    "distill_r110_vgg8_cached": "the same, teacher's logits from a full cache",
    "distill_wrn28_8_vgg8": "WRN28-8 -> VGG8 distillation step",
    "distill_wrn28_8_vgg8_cached": "the same, teacher's logits from a full cache",
    "eval_r110": "ResNet110 evaluation forward, batch 500",
    "teacher_r110": "the frozen ResNet110 teacher's forward",
    "epoch_distill_r110_vgg8": "a whole ResNet110 -> VGG8 epoch (2,560 + 500 images)",
    "epoch_distill_r110_vgg8_filling": "that epoch filling an empty teacher cache",
}


def load(name):
    with open(os.path.join(RESULTS, name)) as f:
        return json.load(f)


def role(record):
    """Who a result file measured: PyTorch, or the package with its kernels or MindSpore's."""
    if record["tool"] == "bench_torch.py":
        return "torch"
    engines = {c.get("conv_engine") for c in record["cases"].values() if "conv_engine" in c}
    return "mindspore" if engines == {"mindspore"} else "package"


def median(records, case, field="img_per_s"):
    values = [r["cases"][case][field] for r in records if field in r["cases"].get(case, {})]
    return statistics.median(values) if values else None


def number(value, digits=1):
    return "" if value is None else f"{value:,.{digits}f}"


def ratio(a, b):
    return "" if a is None or b is None else f"{a / b:.2f}x"


def provenance(records):
    """One line per result file: date, machine and the command that wrote it."""
    lines = []
    for r in records:
        if r.get("tool") is None:       # parity_torch.py's file: the package's run record of the machine
            m = r["machine"]
            lines.append(f"- {r['date'][:16].replace('T', ' ')}, {m['platform']}, {m['cpu_count']} cores, "
                         f"mindspore {m['mindspore']}, torch {next(iter(r['settings'].values()))['torch']}: "
                         f"`{r['command']}`")
            continue
        m = r["machine"]
        cap = f", oneDNN capped at {m['onednn_max_cpu_isa']}" if m.get("onednn_max_cpu_isa") else ""
        gemm = f", NumPy float32 GEMM {m['sgemm_gflops']:.0f} GFLOP/s" if m.get("sgemm_gflops") else ""
        if m.get("openblas_coretype"):
            gemm += f" ({m['openblas_coretype']} kernels)"
        version = ", ".join(f"{k} {v}" for k, v in r["versions"].items() if k in ("mindspore", "torch"))
        lines.append(f"- {r['date'][:16].replace('T', ' ')}, {m['os']}, {m['cpu']} ({m['cores']} cores, "
                     f"{m['isa']}{cap}{gemm}), {version}: `{r['command']}`")
    return "\n".join(lines)


def case_order(records):
    order = []
    for r in records:
        order += [c for c in r["cases"] if c not in order and "error" not in r["cases"][c]]
    return order


def speed_table(records):
    """Per case: the package's rate and fraction of the limit, then MindSpore's kernels and PyTorch
    with the package's speed-up over each, where their files are given."""
    by_role = {k: [r for r in records if role(r) == k] for k in ("package", "mindspore", "torch")}
    package = by_role["package"]
    others = [(title, by_role[k]) for k, title in (("mindspore", "MindSpore's kernels"), ("torch", "PyTorch"))
              if by_role[k]]
    head = ["case", "package's kernels, img/s", "fraction of the limit"]
    for title, _ in others:
        head += [title, f"package / {title.split(chr(39))[0]}"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in case_order(package):
        ours = median(package, case)
        cells = [f"`{case}`: {CASE_NAMES.get(case, case)}", number(ours), number(median(package, case, "fraction"), 2)]
        for _, theirs in others:
            cells += [number(median(theirs, case)), ratio(ours, median(theirs, case))]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


# A CIFAR-100 run: 240 epochs of 50,000 images, each drawing one of its image's 162 augmented views.
EPOCHS, IMAGES, VIEWS = 240, 50_000, 162


def served_fraction(earlier_epochs):
    """Expected share of a 240-epoch run's teacher outputs found in a cache that ``earlier_epochs``
    epochs of other seeds filled before it: epoch e finds a view with probability 1 - (161/162)^(seen)."""
    return sum(1 - (1 - 1 / VIEWS) ** (earlier_epochs + e) for e in range(EPOCHS)) / EPOCHS


def cache_table(records):
    rows = ["| case | live teacher, img/s | cached, img/s | cached / live |", "|---|---|---|---|"]
    pairs = [(live, live + "_cached") for live in case_order(records) if median(records, live + "_cached")]
    for live, cached in pairs:
        rows.append(f"| `{live}`: {CASE_NAMES.get(live, live)} | {number(median(records, live))} | "
                    f"{number(median(records, cached))} | {ratio(median(records, cached), median(records, live))} |")
    filling = median(records, "epoch_distill_r110_vgg8_filling")
    if filling is not None:
        live = median(records, "epoch_distill_r110_vgg8_filling", "live_img_per_s")
        rows.append(f"| `epoch_distill_r110_vgg8_filling`: an epoch live, then the same epoch filling an empty "
                    f"cache | {number(live)} | {number(filling)} | {ratio(filling, live)} |")
    # What the measured step rates make of whole runs: a first run (empty cache), a second with
    # another seed, and sweep cells after the first (one seed: the same views, all stored).
    first, second = served_fraction(0), served_fraction(EPOCHS)
    rows += ["", f"Hours of training steps for 240 CIFAR-100 epochs at these rates (a first run finds "
                 f"{first:.1%} of its teacher outputs stored, a second run with another seed {second:.1%}, "
                 "every sweep cell after the first all of them):", "",
             "| | without the cache | with the cache | |", "|---|---|---|---|"]
    for live, cached in pairs:
        t_live, t_cached = 1 / median(records, live), 1 / median(records, cached)
        hours = lambda f: EPOCHS * IMAGES * (t_cached + (1 - f) * (t_live - t_cached)) / 3600  # noqa: E731
        two = (2 * hours(0), hours(first) + hours(second))
        sweep = (30 * hours(0), hours(first) + 29 * hours(1))
        for what, (without, with_cache) in ((f"`{live}`: TS and ATS runs, own seeds", two),
                                            (f"`{live}`: a 30-cell sweep", sweep)):
            rows.append(f"| {what} | {without:,.0f} h | {with_cache:,.0f} h | {without / with_cache:.2f}x |")
    return rows


def platforms_table(records):
    systems = sorted({r["machine"]["os"] for r in records})
    if len(systems) != 2:
        raise ValueError(f"a platforms table needs results of two operating systems, got {systems}")
    first, second = ([r for r in records if r["machine"]["os"] == s] for s in systems)
    rows = [f"| case | {systems[0]}, img/s | {systems[1]}, img/s | {systems[1]} / {systems[0]} |",
            "|---|---|---|---|"]
    for case in case_order(first):
        a, b = median(first, case), median(second, case)
        if b is None:
            continue
        rows.append(f"| `{case}` | {number(a)} | {number(b)} | {ratio(b, a)} |")
    return rows


def parity_table(records):
    """benchmarks/parity_torch.py's rows: the package's errors from PyTorch float64 beside PyTorch
    float32's, and the worst step's ratio of the two."""
    rows = ["| network | engine | parameters, final | ratio | loss, largest over the steps | ratio | "
            "BN running statistics | ratio | within the multiple |", "|---|---|---|---|---|---|---|---|---|"]
    for record in records:
        for r in record["rows"]:
            rows.append(f"| {r['net']} | {r['engine']} | {r['param_err']:.2e} / {r['torch32_param_err']:.2e} | "
                        f"{r['param_ratio']:.2f} | {r['loss_err']:.2e} / {r['torch32_loss_err']:.2e} | "
                        f"{r['loss_ratio']:.2f} | {r['bn_err']:.2e} / {r['torch32_bn_err']:.2e} | {r['bn_ratio']:.2f} | "
                        f"{'yes' if r['ok'] else 'NO'} (x{record['multiple']:g}) |")
    return rows


KINDS = {"speed": speed_table, "cache": cache_table, "platforms": platforms_table, "parity": parity_table}


def render_table(kind, names):
    if kind not in KINDS:
        raise ValueError(f"unknown table kind {kind!r}: expected one of {', '.join(KINDS)}")
    records = [load(n) for n in names.split()]
    return "\n".join(KINDS[kind](records)) + "\n\n" + provenance(records) + "\n"


def render(text):
    return TABLE.sub(lambda m: m.group(1) + render_table(m.group(2), m.group(3)) + m.group(5), text)


def documents():
    return [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report tables that differ; exit 1 if any")
    opts = p.parse_args(argv)
    stale = []
    for path in documents():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = render(text)
        if new != text:
            stale.append(os.path.relpath(path, ROOT))
            if not opts.check:
                with open(path + ".tmp", "w", encoding="utf-8") as f:
                    f.write(new)
                os.replace(path + ".tmp", path)
    if opts.check and stale:
        print(f"tables out of date with docs/results/: {', '.join(stale)} "
              "(run python benchmarks/render_tables.py)", file=sys.stderr)
        return 1
    for name in stale:
        print(f"rendered {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
