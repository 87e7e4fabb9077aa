"""Convert a PyTorch state dict of the authors' networks (e.g. cifar100-ResNet110-E240.pth) into a
MindSpore checkpoint of ours, under the name run_distill.py looks for a teacher. PyTorch is not needed."""
import os

from src.data import DATASETS, dataset_info
from src.errors import UserError, run_main
from src.nets.models import MODELS, build_network, check_network, default_net_name
from src.nets.torch_checkpoint import load_torch_state
from src.run.cli import Parser, positive, str2bool
from src.run.output_guard import keeper
from src.storage.checkpoint import save_atomic
from src.storage.files import ensure_writable_dir
from src.storage.run_files import ckpt_stem, network_ckpt_name, with_ckpt_suffix
from src.storage.user_paths import below_cwd, join


def build_parser():
    p = Parser(description="Convert the authors' PyTorch .pth (a state dict) into a MindSpore checkpoint.")
    p.add_argument("--pth", required=True, help="the PyTorch file, e.g. cifar100-ResNet110-E240.pth")
    p.add_argument("--net", required=True, choices=sorted(MODELS), help="network type")
    p.add_argument("--n_layer", type=positive(int), required=True, help="network depth")
    p.add_argument("--width", type=positive(int), default=1,
                   help="widening factor (WRN only: WRN28-8 is --n_layer 28 --width 8)")
    p.add_argument("--dataset", default="cifar100", choices=sorted(DATASETS),
                   help="dataset the network was trained on (for --n_classes and the file name)")
    p.add_argument("--n_classes", type=positive(int), default=None,
                   help="number of classes (default: the dataset's, 100 for cifar100)")
    p.add_argument("--net_name", default=None,
                   help="network name in the default file name (default: ResNet110, WRN28-8, ...)")
    p.add_argument("--ckpt_dir", default=below_cwd("ckpts"), help="folder of the checkpoints")
    p.add_argument("--ckpt_name", default=None,
                   help="output file name (default: {dataset}-{net_name}.ckpt, the teacher checkpoint "
                        "run_distill.py loads by default)")
    p.add_argument("--overwrite", type=str2bool, default=False,
                   help="replace an existing output checkpoint (True/False)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    check_network(args.net, args.n_layer)
    net_name = args.net_name or default_net_name(args.net, args.n_layer, args.width)
    n_classes = args.n_classes or dataset_info(args.dataset).n_classes
    out = join(args.ckpt_dir, with_ckpt_suffix(args.ckpt_name or network_ckpt_name(args.dataset, net_name)))
    if os.path.exists(out) and not args.overwrite:
        raise UserError(f"{out} already exists: pass --overwrite True to replace it, or choose "
                        f"another --ckpt_name")
    net = build_network(args.net, args.n_layer, n_classes, args.width)
    load_torch_state(net, args.pth, f"{net_name} with {n_classes} classes")
    ensure_writable_dir(args.ckpt_dir, "--ckpt_dir")
    save_atomic(net, out, before_replacing=keeper(args.ckpt_dir, ckpt_stem(os.path.basename(out))))
    print(f"wrote {out}")


if __name__ == "__main__":
    run_main(main)
