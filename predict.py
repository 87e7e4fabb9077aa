"""Run exported MindIR models on the CPU: accuracy on the test split, or the classes of image files."""
from src.data import BatchLoader, Normalizer, dataset_info, load_split, prepare_dataset
from src.deploy.inference import MindIRModel, class_names, label, read_images, top_classes
from src.device import DEVICES, setup_device
from src.errors import run_main
from src.run.cli import Parser, add_data_flags, positive
from src.training.evaluate import evaluate


def build_parser():
    p = Parser(description="Evaluate exported MindIR models on the dataset's test split (top-1 and "
                           "top-k accuracy over all images), or classify image files with --images.")
    p.add_argument("--mindir", nargs="+", required=True, help="MindIR file(s) written by export.py")
    p.add_argument("--images", nargs="+", default=None,
                   help="image files (PNG, JPG, ...) to classify instead of evaluating; each is "
                        "converted to RGB, resized to 32x32 and normalised like the training data")
    add_data_flags(p)
    p.add_argument("--topk", type=positive(int), default=5,
                   help="classes shown per image; the second accuracy reported is top-k")
    p.add_argument("--batch_size", type=positive(int), default=500, help="images per forward pass")
    p.add_argument("--device", default="CPU", choices=DEVICES, help="device to run on")
    p.add_argument("--device_id", type=int, default=None, help="device index (GPU/Ascend; default: MindSpore's)")
    return p


def report_accuracy(models, args, normalizer):
    folder = prepare_dataset(args.data_dir, args.dataset, args.download)
    images, labels = load_split(folder, args.dataset, "test", args.n_classes)
    loader = BatchLoader(images, labels, args.batch_size, normalizer, train=False)
    topk = (1, args.topk) if args.topk > 1 else (1,)
    for model in models:
        accs = evaluate(model, loader, topk)
        shown = ", ".join(f"top-{k} {acc:.4f}" for k, acc in zip(topk, accs))
        print(f"{model.path}: {shown} over {len(labels)} test images")


def report_classes(models, args, normalizer):
    batch = read_images(args.images, normalizer)
    names = class_names(args.data_dir, args.dataset)
    for model in models:
        if len(models) > 1:
            print(f"{model.path}:")
        for start in range(0, len(batch), args.batch_size):
            chunk = args.images[start:start + args.batch_size]
            ranked = top_classes(model(batch[start:start + args.batch_size]), args.topk)
            for image, best in zip(chunk, ranked):
                print(f"{image}: " + ", ".join(f"{label(c, names)} {p:.4f}" for c, p in best))


def main(argv=None):
    args = build_parser().parse_args(argv)
    info = dataset_info(args.dataset)
    setup_device(args.device, device_id=args.device_id)
    models = [MindIRModel(path) for path in args.mindir]
    normalizer = Normalizer(info.mean, info.std)
    if args.images:
        report_classes(models, args, normalizer)
    else:
        report_accuracy(models, args, normalizer)


if __name__ == "__main__":
    run_main(main)
