"""Train a network alone on CIFAR (the teachers, or a student without distillation)."""
from src.errors import run_main
from src.run.cli import Parser, add_data_flags, add_net_flags, add_train_flags
from src.run.config import resolve_run


def build_parser():
    p = Parser(description="Train a CIFAR network from scratch (teacher or student alone).")
    add_data_flags(p)
    add_net_flags(p)
    add_train_flags(p, log_name="student-nokd.log", ckpt_name="cifar100-VGG8.ckpt")
    return p


def main(argv=None):
    config = resolve_run(build_parser().parse_args(argv))
    from src.nets.models import build_network
    from src.run.setup import prepare_run
    from src.training.classify import Classify
    args = config.args
    with prepare_run(config) as run:
        net = build_network(args.net, args.n_layer, args.n_classes, args.width)
        trainer = Classify(net, run.train, run.test, args, config.files, run.log, run.dist)
        if config.resume:
            trainer.resume(config.resume)
        trainer.fit()
        run.log.message(f"saved {config.files.ckpt} (best test accuracy {trainer.best_acc:.4f} "
                        f"at epoch {trainer.best_epoch})")


if __name__ == "__main__":
    run_main(main)
