"""Export a trained checkpoint (student or teacher) to MindIR, or ONNX, for CPU inference."""
import os
import sys

from src.data import DATASETS, dataset_info
from src.deploy.export import export_network, load_trained
from src.device import DEVICES, setup_device
from src.errors import run_main
from src.losses import KD_WAYS
from src.nets.models import check_network, default_net_name
from src.run.cli import Parser, add_net_flags, positive
from src.run.output_guard import keeper
from src.storage.files import ensure_writable_dir
from src.storage.run_files import EXPORT_SUFFIXES, ckpt_stem, export_path, trained_ckpt_name, with_ckpt_suffix
from src.storage.user_paths import below_cwd, join


def build_parser():
    p = Parser(description="Export a trained network to MindIR (or ONNX) with any batch size; "
                           "writes {ckpt_dir}/{checkpoint stem}_mindir.mindir (or {stem}.onnx).")
    p.add_argument("--device", default="CPU", choices=DEVICES, help="device to export on")
    p.add_argument("--device_id", type=int, default=None, help="device index (GPU/Ascend; default: MindSpore's)")
    p.add_argument("--dataset", default="cifar100", choices=sorted(DATASETS),
                   help="dataset the network was trained on (default names and class count)")
    p.add_argument("--n_classes", type=positive(int), default=None,
                   help="number of classes (default: the dataset's, 100 for cifar100)")
    add_net_flags(p, name=None)
    p.add_argument("--t_net_name", default=None,
                   help="teacher name of a distilled student: the default --ckpt_name becomes "
                        "run_distill.py's {dataset}-{t_net_name}-{net_name}-{kd_way}.ckpt")
    p.add_argument("--kd_way", default="ATS", choices=KD_WAYS,
                   help="how the student was distilled (part of the default --ckpt_name with "
                        "--t_net_name)")
    p.add_argument("--ckpt_dir", default=below_cwd("ckpts"),
                   help="folder of the checkpoint and the export")
    p.add_argument("--ckpt_name", nargs="+", default=None,
                   help="checkpoint file name(s) in --ckpt_dir, each exported (default: "
                        "{dataset}-{net_name}.ckpt, the spec's name of a network trained alone; "
                        "see --t_net_name)")
    p.add_argument("--file_format", default="MINDIR", choices=sorted(EXPORT_SUFFIXES), help="export format")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    check_network(args.net, args.n_layer)
    net_name = args.net_name or default_net_name(args.net, args.n_layer, args.width)
    names = args.ckpt_name or [trained_ckpt_name(args.dataset, net_name, args.t_net_name, args.kd_way)]
    n_classes = args.n_classes or dataset_info(args.dataset).n_classes
    setup_device(args.device, device_id=args.device_id)
    for name in names:
        ckpt = join(args.ckpt_dir, with_ckpt_suffix(name))
        net = load_trained(args.net, args.n_layer, n_classes, args.width, ckpt)
        out = export_path(ckpt, args.file_format)
        ensure_writable_dir(os.path.dirname(os.path.abspath(out)), "--ckpt_dir")
        # Standard output lists the exports; where a replaced one went is a note on standard error.
        export_network(net, out, args.file_format,
                       keeper(args.ckpt_dir, ckpt_stem(name), lambda note: print(note, file=sys.stderr)))
        print(out)


if __name__ == "__main__":
    run_main(main)
