"""Distil one teacher-student pair over a grid of (tp_tau, t_tau): results table and heatmap."""
import os
import sys

import run_distill
from src.analysis.sweep import add_sweep_flags, check_flags, distill_argv, report, run_script, run_sweep
from src.errors import run_main
from src.run.config import resolve_teacher_flags

RUN_DISTILL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_distill.py")


def build_parser():
    p = run_distill.build_parser()
    p.description = ("Run run_distill.py for every (tp_tau, t_tau) of a grid (TS where they are "
                     "equal, ATS elsewhere), collect the results in out_dir/sweep_results.csv and "
                     "draw out_dir/sweep_heatmap.png/.pdf. Run the same command again to continue "
                     "an interrupted sweep. The sweep sets --kd_way, --tp_tau, --t_tau, "
                     "--ckpt_name, --log_name and --resume for each cell.")
    return add_sweep_flags(p)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parsed = build_parser().parse_args(argv)
    check_flags(parsed)
    args = resolve_teacher_flags(parsed)
    from src.analysis.plots import pyplot
    pyplot()    # no figure without matplotlib: say so before hours of training, not after
    rows = run_sweep(distill_argv(argv), args, lambda cell: run_script(RUN_DISTILL, cell))
    report(args, rows)


if __name__ == "__main__":
    run_main(main)
