"""Distil a trained teacher into a student with temperature scaling (TS) or ATS."""
import os

from src.cli import Parser, add_data_flags, add_net_flags, add_train_flags, parse, positive
from src.data import INPUT_NORMS
from src.distill import KD_WAYS, Distill, teacher_taus
from src.errors import UserError, run_main
from src.models import build_network, check_network
from src.onnx_teacher import TEACHER_ENGINES
from src.user_paths import join


def build_parser():
    p = Parser(description="Distil a frozen teacher into a student with TS or ATS.")
    add_data_flags(p)
    add_net_flags(p, prefix="t_", role="teacher network", net="ResNet", n_layer=14, name="ResNet14")
    add_net_flags(p, role="student network")
    p.add_argument("--t_ckpt", default=None,
                   help="teacher checkpoint (default: --ckpt_dir/{dataset}-{t_net_name}.ckpt, "
                        "the name run_classify.py gives it)")
    p.add_argument("--kd_way", default="ATS", choices=KD_WAYS,
                   help="TS: one temperature t_tau for every class (tp_tau is ignored); "
                        "ATS: tp_tau for the correct class, t_tau for the wrong ones")
    p.add_argument("--tp_tau", type=positive(float), default=4.0,
                   help="teacher temperature of the correct class (ATS)")
    p.add_argument("--t_tau", type=positive(float), default=2.0,
                   help="teacher temperature of the wrong classes (all classes under TS)")
    p.add_argument("--s_tau", type=positive(float), default=1.0, help="student temperature")
    p.add_argument("--lamb", type=float, default=0.5,
                   help="weight of the KD term: (1 - lamb) * CE + lamb * KD, in [0, 1]")
    p.add_argument("--teacher_engine", default="auto", choices=TEACHER_ENGINES,
                   help="what runs the frozen teacher: onnxruntime (its ONNX export; about 3x "
                        "faster on the CPU; optional package), mindspore, or auto (onnxruntime "
                        "on the CPU when installed, else mindspore)")
    p.add_argument("--t_input_norm", default="dataset", choices=INPUT_NORMS,
                   help="input normalisation the teacher was trained with: dataset (this package's "
                        "teachers) or imagenet (the authors' PyTorch teachers, see convert_torch.py)")
    p.add_argument("--teacher_cache", default="auto", metavar="auto|off|FOLDER",
                   help="cache of the teacher's logits per training image and augmentation, shared "
                        "by every run of the same teacher and data: auto (beside the teacher "
                        "checkpoint; if it cannot be used there, the teacher runs live), off, or a "
                        "folder to keep it in (an error if it cannot be used there)")
    add_train_flags(p, log_name="student-kd-ats.log", ckpt_name=None)
    return p


def resolve_names(args):
    """Fill the default teacher/student file names; refuse an output that is the teacher's file."""
    if not 0.0 <= args.lamb <= 1.0:
        raise UserError(f"--lamb {args.lamb}: expected a value in [0, 1]")
    if args.t_ckpt is None:
        args.t_ckpt = join(args.ckpt_dir, f"{args.dataset}-{args.t_net_name}.ckpt")
    if args.ckpt_name is None:
        args.ckpt_name = f"{args.dataset}-{args.t_net_name}-{args.net_name}-{args.kd_way}.ckpt"
    stem = join(args.ckpt_dir, args.ckpt_name)
    stem = stem[:-len(".ckpt")] if stem.endswith(".ckpt") else stem
    teacher = os.path.realpath(args.t_ckpt)
    for out in (f"{stem}.ckpt", f"{stem}-last.ckpt", f"{stem}-best.ckpt"):
        if os.path.realpath(out) == teacher:
            raise UserError(f"--ckpt_name {args.ckpt_name}: the student would overwrite the teacher "
                            f"checkpoint {args.t_ckpt}; choose another --ckpt_name")
    if not os.path.isfile(args.t_ckpt):
        raise UserError(f"teacher checkpoint --t_ckpt {args.t_ckpt} not found (train it with "
                        f"run_classify.py, or pass --t_ckpt)")


def teacher_threads(deterministic, dist):
    """ONNX Runtime operator threads for the teacher (None: every usable core)."""
    from src.onnx_teacher import usable_cores
    if deterministic:
        return 1  # keeps a --deterministic run's teacher logits bit-identical too
    if dist:
        # msrun's processes share the machine's cores (one machine is the CPU case).
        return max(1, usable_cores() // dist.size)
    return None


def main(argv=None):
    args = parse(build_parser(), argv)
    check_network(args.t_net, args.t_n_layer, "--t_net")
    check_network(args.net, args.n_layer)
    resolve_names(args)
    from src.data import dataset_info, normalization_stats
    from src.evaluate import evaluate
    from src.run_setup import prepare_run
    from src.teacher import Renormalized, load_teacher, resolve_engine
    from src.teacher_cache_run import open_teacher_caches
    run = prepare_run(args)
    engine, note = resolve_engine(args.teacher_engine, args.device_target)
    if note:
        run.log.message(note)
    teacher = load_teacher(args.t_net, args.t_n_layer, args.n_classes, args.t_width, args.t_ckpt,
                           engine=engine, threads=teacher_threads(args.deterministic, run.dist),
                           on_onnx_failure=run.log.message if args.teacher_engine == "auto" else None)
    engine_name = teacher.engine
    run.log.message(f"teacher engine: {engine_name}")
    if args.t_input_norm != "dataset":
        info = dataset_info(args.dataset)
        teacher = Renormalized(teacher, normalization_stats(info, "dataset"),
                               normalization_stats(info, args.t_input_norm))
    tp, t = teacher_taus(args.kd_way, args.tp_tau, args.t_tau)
    run.log.message(f"{args.kd_way}: teacher temperature {tp:g} on the correct class, {t:g} on the "
                    f"others; student temperature {args.s_tau:g}; lamb {args.lamb:g}")
    caches = open_teacher_caches(args, teacher, engine_name, run.conv_engine, run.train.images,
                                 run.test.images, run.log.message)
    if not run.resume:
        accuracy = (evaluate(caches.test, run.test, with_views=True) if caches
                    else evaluate(teacher, run.test))[0]
        run.log.message(f"teacher {args.t_net_name} ({args.t_ckpt}) test accuracy {accuracy:.4f}")
    net = build_network(args.net, args.n_layer, args.n_classes, args.width)
    trainer = Distill(net, teacher, run.train, run.test, args, run.outputs, run.log, run.dist,
                      cache=caches.train if caches else None)
    if run.resume:
        trainer.resume(run.resume)
    trainer.fit()
    run.log.message(f"saved {run.outputs.ckpt} (best test accuracy {trainer.best_acc:.4f} "
                    f"at epoch {trainer.best_epoch})")


if __name__ == "__main__":
    run_main(main)
