"""Results of finished runs: metrics files, per-run and multi-seed summaries, small CSV tables."""
import csv
import io
import json
import math
import os

from ..errors import UserError
from ..storage.files import write_text_atomic
from ..storage.run_files import RECORD_SUFFIX, metrics_stem
from ..storage.user_paths import join

# Flags that do not change what a run learns: runs differing only in these are the same setting.
NOT_SETTINGS = ("seed", "ckpt_name", "log_name", "ckpt_dir", "log_dir", "resume", "data_dir",
                "download", "deterministic", "device_target", "eval_batch_size", "t_ckpt")


def read_metrics(path):
    """The per-epoch records of a metrics file (JSON lines written by ``RunLog``), in epoch order."""
    try:
        with open(path, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    except OSError as err:
        raise UserError(f"metrics file {path}: cannot read it ({err.strerror or err})") from None
    except json.JSONDecodeError as err:
        raise UserError(f"metrics file {path}: not JSON lines ({err.msg}, line {err.lineno})") from None
    if not records or not all(isinstance(r, dict) and "epoch" in r and "test_acc" in r for r in records):
        raise UserError(f"metrics file {path}: expected one JSON record per epoch with 'epoch' and "
                        f"'test_acc' (a *.metrics.jsonl file of run_classify.py/run_distill.py)")
    return sorted(records, key=lambda r: r["epoch"])


def summarize_history(records):
    """Last-epoch and best test accuracy (fractions) of one run, with the best epoch."""
    best = max(records, key=lambda r: r["test_acc"])    # the first epoch reaching the maximum
    return {"epochs": records[-1]["epoch"], "last_acc": records[-1]["test_acc"],
            "best_acc": best["test_acc"], "best_epoch": best["epoch"]}


def mean_std(values, ddof=1):
    """Mean and standard deviation; ``ddof=1`` (default) is the sample std, NaN for a single value."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_std of no values")
    mean = sum(values) / n
    if n - ddof <= 0:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - ddof))


def group_summary(runs, ddof=1):
    """Mean +/- std of last and best accuracy over runs sharing a ``group`` (first-seen order).

    ``runs``: dicts with ``group``, ``last_acc`` and ``best_acc``. Returns one dict per group.
    """
    groups = {}
    for run in runs:
        groups.setdefault(run["group"], []).append(run)
    out = []
    for name, members in groups.items():
        last = mean_std([r["last_acc"] for r in members], ddof)
        best = mean_std([r["best_acc"] for r in members], ddof)
        out.append({"group": name, "n": len(members), "last_mean": last[0], "last_std": last[1],
                    "best_mean": best[0], "best_std": best[1]})
    return out


def read_run_record(stem, folders):
    """The ``{stem}.run.json`` record (its ``args``) from the first folder holding it, else None."""
    for folder in folders:
        path = join(folder, stem + RECORD_SUFFIX)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    return json.load(f).get("args")
            except (OSError, json.JSONDecodeError, AttributeError):
                raise UserError(f"run record {path}: not a JSON run record") from None
    return None


def setting_key(args):
    """What identifies a setting in a run record's flags: everything but seed, names and folders."""
    return json.dumps({k: v for k, v in sorted(args.items()) if k not in NOT_SETTINGS})


def describe_setting(args):
    """A short label of a run record's setting, e.g. ``cifar100 ResNet110->VGG8 ATS 4/2``."""
    a = {k: f"{args[k]:g}" if isinstance(args.get(k), float) else args.get(k, "?")
         for k in ("dataset", "net_name", "t_net_name", "kd_way", "tp_tau", "t_tau")}
    if "kd_way" in args:
        taus = f"{a['t_tau']}" if a["kd_way"] == "TS" else f"{a['tp_tau']}/{a['t_tau']}"
        return f"{a['dataset']} {a['t_net_name']}->{a['net_name']} {a['kd_way']} {taus}"
    return f"{a['dataset']} {a['net_name']} alone"


def percent(value, std=None):
    """``0.7312`` -> ``73.12``; with ``std`` -> ``73.12 +/- 0.41`` (``n/a`` for an undefined std)."""
    text = f"{100 * value:.2f}"
    if std is None:
        return text
    return f"{text} +/- " + ("n/a" if math.isnan(std) else f"{100 * std:.2f}")


def format_table(rows, columns):
    """Rows (dicts) as a fixed-width text table with a header line."""
    cells = [[str(c) for c in columns]] + [[str(r[c]) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells)


def write_csv_atomic(path, rows, columns):
    """Write ``rows`` (dicts) as CSV through a temporary file, so a failure leaves ``path`` as it was."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def read_csv(path):
    """Rows of a CSV file as dicts of strings ([] if the file does not exist)."""
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def summarize_runs(paths, labels=None, record_dirs=(), ddof=1):
    """Per-run summaries (with their records) and per-group mean +/- std of a list of metrics files.

    Groups: ``labels`` (one per file) if given; else runs whose run records (``{stem}.run.json``,
    looked up in ``record_dirs`` and beside the metrics file) share every setting but the seed and
    the file names; a run without a record is a group of its own.
    """
    if labels is not None and len(labels) != len(paths):
        raise UserError(f"--labels: {len(labels)} labels for {len(paths)} metrics files")
    runs, names = [], {}
    for i, path in enumerate(paths):
        records = read_metrics(path)
        stem = metrics_stem(path)
        if labels is not None:
            group = labels[i]
        else:
            args = read_run_record(stem, list(record_dirs) + [os.path.dirname(os.path.abspath(path))])
            key = setting_key(args) if args else path
            # Equal descriptions of different settings (e.g. another --lr) get a number.
            if key not in names:
                base = describe_setting(args) if args else stem
                taken = sum(1 for v in names.values() if v == base or v.startswith(base + " #"))
                names[key] = base if not taken else f"{base} #{taken + 1}"
            group = names[key]
        runs.append({"run": stem, "path": path, "records": records, "group": group,
                     **summarize_history(records)})
    return runs, group_summary(runs, ddof)


def runs_table(runs):
    """Text table of each run's epochs, last and best test accuracy (%) and group."""
    columns = ("run", "epochs", "last test acc %", "best test acc %", "best epoch", "group")
    return format_table([dict(zip(columns, (r["run"], r["epochs"], percent(r["last_acc"]),
                                            percent(r["best_acc"]), r["best_epoch"], r["group"])))
                         for r in runs], columns)


def groups_table(groups, std_name="sample"):
    """Text table of each group's run count and mean +/- std of last and best test accuracy (%)."""
    columns = ("group", "runs", f"last test acc % (mean +/- {std_name} std)",
               f"best test acc % (mean +/- {std_name} std)")
    return format_table([dict(zip(columns, (g["group"], g["n"], percent(g["last_mean"], g["last_std"]),
                                            percent(g["best_mean"], g["best_std"]))))
                         for g in groups], columns)
