"""A grid of (tp_tau, t_tau) distillations: one ``run_distill.py`` run per cell, a results table
that grows by one row per finished cell, and a restart that skips finished cells and resumes the
interrupted one.

Each cell runs in its own process: calling ``run_distill.main`` repeatedly in one process works, but
MindSpore keeps about 35-85 MB per finished run (compiled graphs; ``gc.collect`` frees none of it),
which a 30-cell grid would pile up; a process start costs about 8 s, nothing next to a cell.
"""
import argparse
import json
import os
import signal
import subprocess
import sys

from ..errors import Interrupted, UserError
from ..losses import kd_way_of
from ..storage.files import ensure_writable_dir, remove_file, write_text_atomic
from ..storage.run_files import run_files, with_ckpt_suffix
from ..storage.user_paths import below_cwd, join
from ..training.classify import RESUME_KEYS, STOP_SIGNALS
from ..training.distill import KD_RESUME_KEYS
from .run_summary import format_table, mean_std, percent, read_csv, read_metrics, summarize_history, write_csv_atomic

RESULTS_FILE = "sweep_results.csv"
SETTINGS_FILE = "sweep.json"
COLUMNS = ("tp_tau", "t_tau", "kd_way", "seed", "final_test_acc", "best_test_acc", "best_epoch",
           "epochs", "metrics")
PER_CELL_FLAGS = ("kd_way", "tp_tau", "t_tau", "ckpt_name", "log_name", "resume")
PAPER_TP_TAUS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)   # the authors' grid (their Figure 10)
PAPER_T_TAUS = (1.0, 2.0, 3.0, 4.0, 5.0)


def positive_floats(text):
    """``"1,2,4"`` -> ``(1.0, 2.0, 4.0)``: distinct positive numbers, comma-separated."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a value is repeated in {text!r}")
    return values


def add_sweep_flags(p):
    """The sweep's own flags, on top of ``run_distill.py``'s (whose per-cell flags it then owns)."""
    p.add_argument("--tp_taus", type=positive_floats, default=PAPER_TP_TAUS,
                   help="teacher temperatures of the correct class, comma-separated (paper: 1,2,3,4,5,6)")
    p.add_argument("--t_taus", type=positive_floats, default=PAPER_T_TAUS,
                   help="teacher temperatures of the wrong classes, comma-separated (paper: 1,2,3,4,5)")
    p.add_argument("--out_dir", default=below_cwd("outputs", "sweep"),
                   help="folder of the results table, the heatmap, and every cell's checkpoints "
                        "(out_dir/ckpts) and logs (out_dir/logs)")
    # A sweep compares cells: they share one seed, and a restart must find the same cells again.
    p.set_defaults(seed=0, **dict.fromkeys(PER_CELL_FLAGS))
    return p


def distill_argv(argv):
    """``argv`` without the sweep's own flags: what every cell's ``run_distill`` receives."""
    only_sweep = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_sweep_flags(only_sweep)
    return only_sweep.parse_known_args(argv)[1]


def check_flags(args):
    """Refuse run_distill flags the sweep sets for every cell itself."""
    given = [f"--{k}" for k in PER_CELL_FLAGS if getattr(args, k) is not None]
    if given:
        raise UserError(f"{', '.join(given)}: set per cell by the sweep; choose the temperatures with "
                        f"--tp_taus and --t_taus, and the output folder with --out_dir")


def cell_stem(args, tp_tau, t_tau):
    """File stem of one cell's checkpoints and logs, e.g. ``cifar100-ResNet110-VGG8-tp4-t2-s0``."""
    return (f"{args.dataset}-{args.t_net_name}-{args.net_name}-tp{tp_tau:g}-t{t_tau:g}"
            f"-s{args.seed}")


def cell_folders(args):
    """(checkpoint folder, log folder) of the sweep's cells."""
    return join(args.out_dir, "ckpts"), join(args.out_dir, "logs")


def cell_files(args, tp_tau, t_tau):
    """The files of one cell's run (run_files.py)."""
    stem = cell_stem(args, tp_tau, t_tau)
    ckpt_dir, log_dir = cell_folders(args)
    return run_files(ckpt_dir, with_ckpt_suffix(stem), log_dir, f"{stem}.log")


def cell_argv(argv, args, tp_tau, t_tau):
    """The user's run_distill flags plus this cell's: later flags win, so the cell's override."""
    stem = cell_stem(args, tp_tau, t_tau)
    ckpt_dir, log_dir = cell_folders(args)
    return list(argv) + [
        "--kd_way", kd_way_of(tp_tau, t_tau), "--tp_tau", f"{tp_tau!r}", "--t_tau", f"{t_tau!r}",
        "--seed", str(args.seed), "--t_ckpt", args.t_ckpt,
        "--ckpt_dir", ckpt_dir, "--ckpt_name", with_ckpt_suffix(stem),
        "--log_dir", log_dir, "--log_name", f"{stem}.log",
        "--resume", "auto"]


def check_settings(args):
    """Record the sweep's settings in out_dir; refuse to mix cells trained with other settings."""
    keys = [k for k in RESUME_KEYS + KD_RESUME_KEYS if k not in PER_CELL_FLAGS and k != "seed"]
    keys += ["net_name", "t_net_name"]
    settings = {k: getattr(args, k) for k in keys}
    path = join(args.out_dir, SETTINGS_FILE)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                recorded = json.load(f)
        except (OSError, json.JSONDecodeError):
            raise UserError(f"{path}: not a readable sweep settings file") from None
        differing = [f"--{k} {recorded.get(k)} (now {v})" for k, v in settings.items()
                     if recorded.get(k) != v]
        if differing:
            raise UserError(f"--out_dir {args.out_dir} holds a sweep with other settings: "
                            f"{', '.join(differing)}; use another --out_dir")
    else:
        write_text_atomic(path, json.dumps(settings, indent=2) + "\n")


def cell_key(tp_tau, t_tau, seed):
    return float(tp_tau), float(t_tau), int(seed)


def finished_cells(rows):
    return {cell_key(r["tp_tau"], r["t_tau"], r["seed"]) for r in rows}


def result_row(args, tp_tau, t_tau, metrics_path):
    summary = summarize_history(read_metrics(metrics_path))
    return {"tp_tau": tp_tau, "t_tau": t_tau, "kd_way": kd_way_of(tp_tau, t_tau),
            "seed": args.seed, "final_test_acc": summary["last_acc"],
            "best_test_acc": summary["best_acc"], "best_epoch": summary["best_epoch"],
            "epochs": summary["epochs"], "metrics": metrics_path}


def run_script(script, argv):
    """Run ``python script *argv`` as a child process and wait for it.

    POSIX: the child gets its own session, so Ctrl-C reaches this process only; it is passed on as
    SIGTERM, on which the trainer stops after its last saved epoch. Windows: a console sends Ctrl-C
    to every program attached to it, the child included, which stops on its own; this process only
    waits for it (passing it on would be TerminateProcess, which stops nothing cleanly). Raises
    ``Interrupted`` if the child was stopped, ``UserError`` if it failed (its own message is already
    on stderr).
    """
    posix = os.name != "nt"
    child = subprocess.Popen([sys.executable, script, *argv], start_new_session=posix)
    stopped = []

    def forward(signum, frame):
        stopped.append(signum)
        if posix:
            child.send_signal(signal.SIGTERM)

    handlers = {s: signal.signal(s, forward) for s in STOP_SIGNALS}
    try:
        code = child.wait()
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    if stopped or code == 130:
        raise Interrupted(f"{os.path.basename(script)} was stopped")
    if code != 0:
        raise UserError(f"{os.path.basename(script)} failed with exit code {code} (its message is above)")


def run_sweep(argv, args, run_cell, log=print):
    """Run every unfinished cell of the grid, appending its row to the results table when it ends.

    ``argv``: the user's command line (run_distill flags are passed on to every cell);
    ``run_cell(argv)``: runs one distillation (``run_distill.py`` through ``run_script``).
    Returns the table's rows.
    """
    ensure_writable_dir(args.out_dir, "--out_dir")
    check_settings(args)
    table = join(args.out_dir, RESULTS_FILE)
    rows = read_csv(table)
    grid = [(tp, t) for tp in args.tp_taus for t in args.t_taus]
    done = finished_cells(rows)
    todo = [(tp, t) for tp, t in grid if cell_key(tp, t, args.seed) not in done]
    log(f"sweep: {len(grid)} cells, {len(grid) - len(todo)} already finished, {len(todo)} to run "
        f"(seed {args.seed}); results in {table}")
    for k, (tp, t) in enumerate(todo, 1):
        log(f"sweep: cell {k}/{len(todo)}: tp_tau {tp:g}, t_tau {t:g}")
        try:
            run_cell(cell_argv(argv, args, tp, t))
        except Interrupted:
            raise Interrupted(f"sweep interrupted in cell tp_tau {tp:g}, t_tau {t:g}; run the same "
                              f"command again to continue (finished cells are skipped)") from None
        except UserError as err:
            raise UserError(f"sweep cell tp_tau {tp:g}, t_tau {t:g}: {err}") from None
        files = cell_files(args, tp, t)
        rows = read_csv(table) + [result_row(args, tp, t, files.metrics)]
        write_csv_atomic(table, rows, COLUMNS)
        # The training state (with momenta, twice the network's size) served only to resume the cell.
        if os.path.isfile(files.last):
            remove_file(files.last)     # read-only, as MindSpore writes checkpoints
    return rows


def report(args, rows):
    """Print the grid's results and draw the heatmap (PNG and PDF) into out_dir."""
    from .plots import plot_sweep_heatmap
    cells = heatmap_cells(rows, args.tp_taus, args.t_taus)
    table = [{"tp_tau": f"{c['tp_tau']:g}", "t_tau": f"{c['t_tau']:g}",
              "kd_way": kd_way_of(c["tp_tau"], c["t_tau"]), "seeds": c["n"],
              "final_test_acc_%": percent(c["mean"], c["std"] if c["n"] > 1 else None)}
             for c in sorted(cells, key=lambda c: (c["tp_tau"], c["t_tau"]))]
    print(format_table(table, ("tp_tau", "t_tau", "kd_way", "seeds", "final_test_acc_%")))
    best = max(cells, key=lambda c: c["mean"])
    print(f"best: tp_tau {best['tp_tau']:g}, t_tau {best['t_tau']:g}: {percent(best['mean'])}% "
          f"final test accuracy (mean of {best['n']} seed(s))")
    stem = join(args.out_dir, "sweep_heatmap")
    title = (f"{args.dataset}: {args.t_net_name} -> {args.net_name}, {args.epoches} epochs, "
             f"final test accuracy")
    plot_sweep_heatmap(cells, [f"{stem}.png", f"{stem}.pdf"], title)
    print(f"wrote {stem}.png and {stem}.pdf")


def heatmap_cells(rows, tp_taus, t_taus):
    """Per grid cell: mean and sample std of the final test accuracy over the seeds in ``rows``."""
    accs = {}
    for r in rows:
        key = (float(r["tp_tau"]), float(r["t_tau"]))
        if key[0] in tp_taus and key[1] in t_taus:
            accs.setdefault(key, []).append(float(r["final_test_acc"]))
    cells = []
    for (tp, t), values in accs.items():
        mean, std = mean_std(values)
        cells.append({"tp_tau": tp, "t_tau": t, "mean": mean, "std": std, "n": len(values)})
    return cells
