"""What both trainers' entry points do before training: hold the outputs, set up the device,
load the data, start the log."""
from contextlib import contextmanager
from types import SimpleNamespace

from ..data import BatchLoader, Normalizer, dataset_info, load_split, prepare_dataset
from ..device import setup_device, usable_cores
from ..errors import UserError
from ..kernels.engine import set_threads
from .log import RunLog, environment_info
from .output_guard import OutputLock, set_aside_earlier_run
from .parallel import init_data_parallel, launched_by_msrun


@contextmanager
def prepare_run(config):
    """Within ``with``: the run ``config`` (a RunConfig, config.py) holds its outputs
    (output_guard.py), with the device (and data parallelism under msrun) set up, the data loaded and
    the log started. A fresh run has first kept the files of an earlier one it would replace."""
    # One writer per output: a single process locks at once; under msrun rank 0 does, once it knows
    # its rank (the processes of a run are one writer, and only rank 0 writes).
    lock = None if launched_by_msrun() else OutputLock(config.files).acquire()
    try:
        run = _set_up(config)
        if run.dist and run.dist.rank == 0:
            lock = OutputLock(config.files).acquire()
        kept = set_aside_earlier_run(config.files) if lock and not config.resume else None
        if kept:
            run.log.message(f"a fresh run over an earlier run's files: moved {', '.join(kept[1])} to {kept[0]}")
        yield run
    finally:
        if lock:
            lock.release()


def _set_up(config):
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
    return SimpleNamespace(dist=dist, train=train, test=test, log=log, data_folder=folder,
                           conv_engine=conv_engine)
