"""Train a network alone on CIFAR (the teachers, or a student without distillation)."""
from src.classify import Classify
from src.cli import Parser, add_data_flags, add_net_flags, add_train_flags, parse
from src.errors import run_main
from src.models import build_network, check_network


def build_parser():
    p = Parser(description="Train a CIFAR network from scratch (teacher or student alone).")
    add_data_flags(p)
    add_net_flags(p)
    add_train_flags(p, log_name="student-nokd.log", ckpt_name="cifar100-VGG8.ckpt")
    return p


def main(argv=None):
    args = parse(build_parser(), argv)
    check_network(args.net, args.n_layer)
    from src.run_setup import prepare_run
    run = prepare_run(args)
    net = build_network(args.net, args.n_layer, args.n_classes, args.width)
    trainer = Classify(net, run.train, run.test, args, run.outputs, run.log, run.dist)
    if run.resume:
        trainer.resume(run.resume)
    trainer.fit()
    run.log.message(f"saved {run.outputs.ckpt} (best test accuracy {trainer.best_acc:.4f} "
                    f"at epoch {trainer.best_epoch})")


if __name__ == "__main__":
    run_main(main)
