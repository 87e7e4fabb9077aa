"""Training curves of finished runs, a table of their accuracies, and mean +/- std over seeds."""
from src.analysis.run_summary import groups_table, runs_table, summarize_runs
from src.errors import run_main
from src.run.cli import Parser
from src.storage.user_paths import below_cwd


def build_parser():
    p = Parser(description="Plot loss and train/test accuracy per epoch of runs (their "
                           "*.metrics.jsonl files), print each run's last and best test accuracy, "
                           "and the mean +/- std over runs of the same setting (several seeds).")
    p.add_argument("metrics", nargs="+", metavar="METRICS_FILE",
                   help="metrics files written by run_classify.py / run_distill.py (log_dir)")
    p.add_argument("--out", required=True, help="figure file (.png, .pdf or .svg)")
    p.add_argument("--labels", type=lambda s: s.split(","), default=None,
                   help="comma-separated group label per metrics file (runs with one label are "
                        "summarised together); default: group by the runs' records")
    p.add_argument("--ckpt_dir", default=below_cwd("ckpts"),
                   help="where the runs' records {stem}.run.json are (also looked for beside "
                        "each metrics file)")
    p.add_argument("--std", default="sample", choices=("sample", "population"),
                   help="standard deviation over a group: sample (n-1, the usual choice) or population (n)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    runs, groups = summarize_runs(args.metrics, args.labels, [args.ckpt_dir],
                                  ddof=1 if args.std == "sample" else 0)
    from src.analysis.plots import plot_run_curves
    plot_run_curves([(r["run"], r["records"]) for r in runs], args.out)
    print(runs_table(runs))
    print()
    print(groups_table(groups, args.std))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    run_main(main)
