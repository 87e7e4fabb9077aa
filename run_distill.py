"""Distil a trained teacher into a student with temperature scaling (TS) or ATS."""
from src.data import INPUT_NORMS
from src.errors import run_main
from src.losses import KD_WAYS, teacher_taus
from src.run.cli import Parser, add_data_flags, add_net_flags, add_train_flags, positive
from src.run.config import resolve_run
from src.teacher.onnx_runtime import TEACHER_ENGINES
from src.training.distill import Distill


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
                   help="what runs the frozen teacher: onnxruntime (its ONNX export; faster on the "
                        "CPU; optional package), mindspore, or auto (onnxruntime on the CPU when "
                        "installed, else mindspore)")
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


def main(argv=None):
    config = resolve_run(build_parser().parse_args(argv), distill=True)
    from src.nets.models import build_network
    from src.run.setup import prepare_run
    from src.teacher.cache_run import open_teacher_caches
    from src.teacher.frozen import frozen_teacher
    from src.training.evaluate import evaluate
    args = config.args
    with prepare_run(config) as run:
        teacher = frozen_teacher(args, run.log.message, run.dist)
        tp, t = teacher_taus(args.kd_way, args.tp_tau, args.t_tau)
        run.log.message(f"{args.kd_way}: teacher temperature {tp:g} on the correct class, {t:g} on the "
                        f"others; student temperature {args.s_tau:g}; lamb {args.lamb:g}")
        caches = open_teacher_caches(args, teacher, run.conv_engine, run.train.images, run.test.images,
                                     run.log.message)
        if not config.resume:
            accuracy = (evaluate(caches.test, run.test, with_views=True) if caches
                        else evaluate(teacher, run.test))[0]
            run.log.message(f"teacher {args.t_net_name} ({args.t_ckpt}) test accuracy {accuracy:.4f}")
        net = build_network(args.net, args.n_layer, args.n_classes, args.width)
        trainer = Distill(net, teacher, run.train, run.test, args, config.files, run.log, run.dist,
                          cache=caches.train if caches else None)
        if config.resume:
            trainer.resume(config.resume)
        trainer.fit()
        run.log.message(f"saved {config.files.ckpt} (best test accuracy {trainer.best_acc:.4f} "
                        f"at epoch {trainer.best_epoch})")


if __name__ == "__main__":
    run_main(main)
