"""Wrong-class statistics of trained teachers under TS and ATS over a temperature grid (paper Fig. 7)."""
import json
import os
from types import SimpleNamespace

from src.analysis.run_summary import write_csv_atomic
from src.analysis.sweep import positive_floats
from src.analysis.teacher_stats import ATS_FACTORS, AUTHORS_TAUS, temperature_table, wrong_class_stats
from src.data import INPUT_NORMS
from src.device import DEVICES
from src.errors import UserError, run_main
from src.nets.models import MODELS, check_network, default_net_name
from src.run.cli import Parser, add_data_flags, positive
from src.run.output_guard import keep_before_writing
from src.storage.files import ensure_writable_dir, write_text_atomic
from src.storage.run_files import network_ckpt_name
from src.storage.user_paths import below_cwd, join
from src.teacher.onnx_runtime import TEACHER_ENGINES

COLUMNS = ("teacher", "ckpt", "split", "scheme", "tau", "tp_tau", "t_tau", "e_q", "sigma_q",
           "p_correct", "entropy", "accuracy", "n_samples", "n_classes")
TEACHER_FLAGS = ("t_net", "t_n_layer", "t_width", "t_net_name", "t_ckpt")


def build_parser():
    p = Parser(description="Measure how a teacher's wrong-class probabilities look under TS and ATS "
                           "over a grid of temperatures (the paper's Figure 7). Several teachers: "
                           "repeat --t_ckpt; give each other --t_* flag once (all teachers) or once "
                           "per teacher, in --t_ckpt order.")
    add_data_flags(p)
    p.add_argument("--t_net", action="append", choices=sorted(MODELS),
                   help="teacher network type (default ResNet); repeatable")
    p.add_argument("--t_n_layer", action="append", type=positive(int),
                   help="teacher depth (default 14); repeatable")
    p.add_argument("--t_width", action="append", type=positive(int),
                   help="teacher widening factor, WRN only (default 1); repeatable")
    p.add_argument("--t_net_name", action="append",
                   help="teacher name, its label in the table and figure (default e.g. ResNet110); "
                        "repeatable")
    p.add_argument("--t_ckpt", action="append",
                   help="teacher checkpoint (default --ckpt_dir/{dataset}-{t_net_name}.ckpt); "
                        "repeat it for several teachers")
    p.add_argument("--ckpt_dir", default=below_cwd("ckpts"),
                   help="where default teacher checkpoints are found")
    p.add_argument("--split", default="train", choices=("train", "test"),
                   help="images to measure on (the authors used the training split)")
    p.add_argument("--taus", type=positive_floats, default=AUTHORS_TAUS,
                   help="temperatures, comma-separated (default: the authors' 24 values, 0.05 to 10)")
    p.add_argument("--ats_tp_factor", type=positive(float), default=ATS_FACTORS[0],
                   help="ATS at temperature tau uses tp_tau = this * tau on the correct class "
                        "(authors' analysis: 1.25)")
    p.add_argument("--ats_t_factor", type=positive(float), default=ATS_FACTORS[1],
                   help="... and t_tau = this * tau on the wrong classes (authors' analysis: 0.75)")
    p.add_argument("--t_input_norm", default="dataset", choices=INPUT_NORMS,
                   help="input normalisation the teachers were trained with: dataset (this "
                        "package's) or imagenet (the authors' PyTorch teachers)")
    p.add_argument("--teacher_engine", default="mindspore", choices=TEACHER_ENGINES,
                   help="what runs the teachers (as run_distill.py's flag)")
    p.add_argument("--teacher_cache", default="off", metavar="off|auto|FOLDER",
                   help="read (and add to) run_distill.py's cache of the teacher's logits, where "
                        "the images as they are (no crop offset, no flip) are one of the views: "
                        "auto (beside the teacher checkpoint) or a FOLDER; it needs the engine "
                        "run_distill.py used (--teacher_engine auto)")
    p.add_argument("--batch_size", type=positive(int), default=500, help="images per forward batch")
    p.add_argument("--out_dir", default=below_cwd("outputs", "teacher_stats"),
                   help="folder receiving teacher_stats.csv/.json/.png/.pdf")
    p.add_argument("--device_target", default="CPU", choices=DEVICES, help="device to run on")
    return p


def teacher_specs(args):
    """One dict per teacher from the parallel --t_* lists (a flag given once applies to all)."""
    given = {k: getattr(args, k) for k in TEACHER_FLAGS}
    n = max([len(v) for v in given.values() if v] or [1])
    for k, values in given.items():
        if values and len(values) not in (1, n):
            raise UserError(f"--{k} given {len(values)} times for {n} teachers: give it once (for "
                            f"every teacher) or once per teacher, in --t_ckpt order")
    defaults = {"t_net": "ResNet", "t_n_layer": 14, "t_width": 1, "t_net_name": None, "t_ckpt": None}
    specs = []
    for i in range(n):
        spec = {k: (v[i] if len(v) == n else v[0]) if v else defaults[k] for k, v in given.items()}
        check_network(spec["t_net"], spec["t_n_layer"], "--t_net")
        spec["t_net_name"] = spec["t_net_name"] or default_net_name(spec["t_net"], spec["t_n_layer"],
                                                                    spec["t_width"])
        spec["t_ckpt"] = spec["t_ckpt"] or join(args.ckpt_dir, network_ckpt_name(args.dataset, spec["t_net_name"]))
        if not os.path.isfile(spec["t_ckpt"]):
            raise UserError(f"teacher checkpoint --t_ckpt {spec['t_ckpt']} not found")
        specs.append(spec)
    names = [s["t_net_name"] for s in specs]
    for s in specs:    # two checkpoints of one network are told apart by their file names
        s["label"] = (s["t_net_name"] if names.count(s["t_net_name"]) == 1
                      else f"{s['t_net_name']} ({os.path.basename(s['t_ckpt'])})")
    return specs


def teacher_logits(targs, loader, split, splits, conv_engine):
    """Logits and labels of one forward pass over ``loader`` (every tau reuses it): live, or through
    the teacher cache (``splits``: both splits' images and labels, which its key covers)."""
    from src.analysis.teacher_stats import collect_logits
    from src.teacher.cache_run import open_teacher_caches
    from src.teacher.frozen import frozen_teacher, load_teacher
    if targs.teacher_cache == "off":
        teacher = load_teacher(targs.t_net, targs.t_n_layer, targs.n_classes, targs.t_width,
                               targs.t_ckpt, engine=targs.teacher_engine)
        return collect_logits(teacher, loader)
    teacher = frozen_teacher(targs, print)
    caches = open_teacher_caches(targs, teacher, conv_engine, splits["train"][0], splits["test"][0],
                                 print)
    if caches is None:
        return collect_logits(teacher, loader)
    return collect_logits(getattr(caches, split), loader, with_views=True)


def main(argv=None):
    args = build_parser().parse_args(argv)
    specs = teacher_specs(args)
    ensure_writable_dir(args.out_dir, "--out_dir")
    from src.analysis.plots import plot_teacher_stats, pyplot
    pyplot()
    from src.data import BatchLoader, Normalizer, dataset_info, load_split, normalization_stats, prepare_dataset
    from src.device import setup_device
    info = dataset_info(args.dataset)
    n_classes = args.n_classes or info.n_classes
    if n_classes < info.n_classes:
        raise UserError(f"--n_classes {n_classes}: {args.dataset} has {info.n_classes} classes")
    conv_engine, _ = setup_device(args.device_target, seed=0)
    folder = prepare_dataset(args.data_dir, args.dataset, args.download)
    splits = {split: load_split(folder, args.dataset, split, n_classes) for split in ("train", "test")}
    images, labels = splits[args.split]
    # Through the cache the teachers see what run_distill.py's do: the dataset's normalisation,
    # renormalised for the teacher (teacher.frozen_teacher).
    norm = args.t_input_norm if args.teacher_cache == "off" else "dataset"
    loader = BatchLoader(images, labels, args.batch_size, Normalizer(*normalization_stats(info, norm)),
                         train=False)
    factors = (args.ats_tp_factor, args.ats_t_factor)
    rows = []
    for s in specs:
        teacher_args = SimpleNamespace(**{k: s[k] for k in TEACHER_FLAGS}, n_classes=n_classes,
                                       dataset=args.dataset, t_input_norm=args.t_input_norm,
                                       teacher_engine=args.teacher_engine, teacher_cache=args.teacher_cache,
                                       device_target=args.device_target, deterministic=False)
        logits, y = teacher_logits(teacher_args, loader, args.split, splits, conv_engine)
        table = temperature_table(logits, y, args.taus, factors, teacher=s["label"])
        rows += [{**r, "ckpt": s["t_ckpt"], "split": args.split} for r in table]
        raw = wrong_class_stats(logits, y, 1.0, 1.0)
        print(f"{s['t_net_name']} ({s['t_ckpt']}): accuracy {100 * table[0]['accuracy']:.2f}% on "
              f"{len(y)} {args.split} images; at tau 1 mean correct-class probability "
              f"{raw['p_correct']:.4f}, mean entropy {raw['entropy']:.4f} nats")
    stem = join(args.out_dir, "teacher_stats")
    keep_before_writing([f"{stem}.{ext}" for ext in ("csv", "json", "png", "pdf")], args.out_dir, "teacher_stats")
    write_csv_atomic(f"{stem}.csv", rows, COLUMNS)
    meta = {"dataset": args.dataset, "split": args.split, "ats_tp_factor": factors[0],
            "ats_t_factor": factors[1], "teachers": specs, "rows": rows}
    write_text_atomic(f"{stem}.json", json.dumps(meta, indent=1) + "\n")
    plot_teacher_stats(rows, [f"{stem}.png", f"{stem}.pdf"], factors)
    print(f"wrote {stem}.csv, {stem}.json, {stem}.png and {stem}.pdf")


if __name__ == "__main__":
    run_main(main)
