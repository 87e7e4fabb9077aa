"""What both trainers' entry points do before training: device, data, loaders, log."""
from types import SimpleNamespace

from .data import BatchLoader, Normalizer, dataset_info, load_split, prepare_dataset
from .device import setup_device, usable_cores
from .errors import UserError
from .kernels.engine import set_threads
from .parallel import init_data_parallel
from .run_log import RunLog, environment_info


def prepare_run(config):
    """Set up the device (and data parallelism under msrun) and load the data for the run
    ``config`` (a RunConfig, run_config.py)."""
    args = config.args
    info = dataset_info(args.dataset)
    if args.n_classes < info.n_classes:
        raise UserError(f"--n_classes {args.n_classes}: {args.dataset} has {info.n_classes} classes")
    conv_engine, note = setup_device(args.device_target, args.seed, args.deterministic,
                                     conv_engine=args.conv_engine, log=print)
    dist = init_data_parallel()
    if dist and conv_engine == "onednn":
        # msrun's processes share the machine's cores (one machine is the CPU case).
        set_threads(max(1, usable_cores() // dist.size))
    folder = prepare_dataset(args.data_dir, args.dataset, args.download)
    train_x, train_y = load_split(folder, args.dataset, "train", args.n_classes)
    test_x, test_y = load_split(folder, args.dataset, "test", args.n_classes)
    last_batch = len(train_y) % args.batch_size or args.batch_size
    if dist and last_batch < dist.size:
        raise UserError(f"--batch_size {args.batch_size}: with {len(train_y)} training images a batch of "
                        f"{last_batch} would leave some of the {dist.size} processes without data")
    norm = Normalizer(info.mean, info.std)
    shards = dict(num_shards=dist.size, shard_id=dist.rank) if dist else {}
    train = BatchLoader(train_x, train_y, args.batch_size, norm, train=True, seed=args.seed, **shards)
    test = BatchLoader(test_x, test_y, args.eval_batch_size, norm, train=False)
    files = config.files
    log = RunLog(files.log, files.metrics, files.record, enabled=dist is None or dist.rank == 0)
    env = environment_info(args.device_target, conv_engine)
    if dist:
        env["data_parallel_processes"] = dist.size
    log.start(vars(args), env, resumed_from=config.resume)
    if note:
        log.message(note)
    return SimpleNamespace(dist=dist, train=train, test=test, log=log, data_folder=folder)
