"""CIFAR-10/100 in the official "python version" format: download, verify, load, augment, batch."""
import hashlib
import os
import pickle
import queue
import sys
import tarfile
import threading
import urllib.request
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .errors import UserError
from .storage.user_paths import join


@dataclass(frozen=True)
class DatasetInfo:
    url: str
    archive_md5: str
    folder: str              # what the archive extracts to
    train_files: tuple
    test_files: tuple
    label_key: bytes
    meta_file: str
    names_key: bytes
    n_classes: int
    mean: tuple              # per-channel, on [0, 1] pixels
    std: tuple


DATASETS = {
    "cifar100": DatasetInfo(
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        archive_md5="eb9058c3a382ffc7106e4002c42a8d85",
        folder="cifar-100-python", train_files=("train",), test_files=("test",),
        label_key=b"fine_labels", meta_file="meta", names_key=b"fine_label_names", n_classes=100,
        mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)),
    "cifar10": DatasetInfo(
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        archive_md5="c58f30108f718f92721af3b95e74349a",
        folder="cifar-10-batches-py", train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",), label_key=b"labels", meta_file="batches.meta",
        names_key=b"label_names", n_classes=10,
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
}


# What a network may have been trained on: its dataset's own statistics (this package) or ImageNet's
# (the authors' PyTorch teachers).
INPUT_NORMS = ("dataset", "imagenet")
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def normalization_stats(info, input_norm):
    """(mean, std) of the input normalisation ``input_norm`` for the dataset ``info``."""
    return (info.mean, info.std) if input_norm == "dataset" else IMAGENET_MEAN_STD


def dataset_info(name):
    if name not in DATASETS:
        raise UserError(f"--dataset {name!r}: expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


# ---------------------------------------------------------------------------------------------
# Safe reading of pickles. Unpickling can run arbitrary code, so only the names that NumPy arrays
# and plain containers need are resolvable; anything else (os.system, eval, ...) is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickle(path):
    """Read a CIFAR pickle (Python 2 protocol, bytes keys) without executing anything it names."""
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError) as err:
        raise UserError(f"{path}: not a readable CIFAR pickle ({err or type(err).__name__})") from None


# ---------------------------------------------------------------------------------------------
# Locating, downloading and extracting.
def file_digest(path, algorithm="md5", chunk=1 << 20):
    """Hex digest of a file's content (``algorithm``: a hashlib name)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def find_dataset_dir(data_dir, info):
    """The extracted folder: ``data_dir/<folder>``, or ``data_dir`` itself if it is that folder."""
    for cand in (join(data_dir, info.folder), data_dir):
        if all(os.path.isfile(join(cand, f)) for f in info.train_files + info.test_files):
            return cand
    return None


def _progress(done, total):
    if not sys.stderr.isatty():
        return
    mb = done / 2 ** 20
    if total > 0:
        sys.stderr.write(f"\rdownloading {mb:7.1f} / {total / 2 ** 20:.1f} MB ({100 * done / total:5.1f}%)")
    else:
        sys.stderr.write(f"\rdownloading {mb:7.1f} MB")
    sys.stderr.flush()


def download(url, dest, md5):
    """Download ``url`` to ``dest`` through a ``.part`` file; ``dest`` appears only if the md5 matches."""
    part = dest + ".part"
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while True:
                block = resp.read(1 << 20)
                if not block:
                    break
                out.write(block)
                done += len(block)
                _progress(done, total)
        if sys.stderr.isatty():
            sys.stderr.write("\n")
    except OSError as err:
        if os.path.exists(part):
            os.remove(part)
        raise UserError(f"could not download {url} ({err}); download it by hand and point "
                        f"--data_dir at the folder holding it or its extracted contents") from None
    actual = file_digest(part)
    if actual != md5:
        os.remove(part)
        raise UserError(f"{url}: md5 {actual} does not match the expected {md5} "
                        f"(truncated or corrupt download; it was removed)")
    os.replace(part, dest)


def verify_md5(path, md5):
    """Check an archive found in the data folder; the user's file is left in place either way."""
    actual = file_digest(path)
    if actual != md5:
        raise UserError(f"{path}: md5 {actual} does not match the expected {md5} (truncated or "
                        f"corrupt; delete it to download again, or replace it)")


def safe_extract(archive, dest):
    """Extract a tar archive into ``dest``; refuse links, devices and members landing outside ``dest``."""
    root = os.path.realpath(dest)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                target = os.path.realpath(os.path.join(root, m.name))
                if os.path.isabs(m.name) or not (target == root or target.startswith(root + os.sep)):
                    raise UserError(f"{archive}: unsafe member {m.name!r} would land outside {dest}")
                if not (m.isfile() or m.isdir()):
                    raise UserError(f"{archive}: unsupported member {m.name!r} (only files and folders)")
            tar.extractall(root, members=members)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise UserError(f"{archive}: not a readable tar.gz archive ({err})") from None


def prepare_dataset(data_dir, dataset, download_missing):
    """Return the folder holding the extracted dataset, downloading it first if allowed and absent."""
    info = dataset_info(dataset)
    found = find_dataset_dir(data_dir, info)
    if found:
        return found
    archive = join(data_dir, os.path.basename(info.url))
    if not os.path.isfile(archive):
        if not download_missing:
            raise UserError(f"--data_dir {data_dir}: no {info.folder}/ with "
                            f"{', '.join(info.train_files + info.test_files)} found and --download is "
                            f"False (pass --download True, or extract {os.path.basename(info.url)} there)")
        try:
            os.makedirs(data_dir, exist_ok=True)
        except OSError as err:
            raise UserError(f"--data_dir {data_dir}: cannot create it ({err.strerror})") from None
        download(info.url, archive, info.archive_md5)
    else:
        verify_md5(archive, info.archive_md5)
    safe_extract(archive, data_dir)
    found = find_dataset_dir(data_dir, info)
    if not found:
        raise UserError(f"{archive}: extracted, but {info.folder}/ with the expected files is not in it")
    return found


# ---------------------------------------------------------------------------------------------
# Loading.
def load_split(folder, dataset, split, n_classes=None):
    """Images as uint8 (N, 3, 32, 32) and labels as int32 (N,) of one split, validated."""
    info = dataset_info(dataset)
    n_classes = info.n_classes if n_classes is None else n_classes
    images, labels = [], []
    for name in info.train_files if split == "train" else info.test_files:
        path = join(folder, name)
        entry = load_pickle(path)
        if not isinstance(entry, dict) or b"data" not in entry or info.label_key not in entry:
            raise UserError(f"{path}: expected a dict with keys b'data' and {info.label_key!r}")
        data = np.asarray(entry[b"data"])
        lab = np.asarray(entry[info.label_key])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise UserError(f"{path}: b'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
        if lab.shape != (data.shape[0],) or not np.issubdtype(lab.dtype, np.integer):
            raise UserError(f"{path}: {lab.shape[0] if lab.ndim else 0} labels for {data.shape[0]} images")
        if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
            raise UserError(f"{path}: label {int(lab.max() if lab.max() >= n_classes else lab.min())} "
                            f"outside 0..{n_classes - 1} (--n_classes {n_classes})")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(lab.astype(np.int32))
    return np.concatenate(images), np.concatenate(labels)


def load_class_names(folder, dataset):
    info = dataset_info(dataset)
    path = join(folder, info.meta_file)
    if not os.path.isfile(path):
        return None
    meta = load_pickle(path)
    names = meta.get(info.names_key) if isinstance(meta, dict) else None
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names] if names else None


# ---------------------------------------------------------------------------------------------
# Batching and augmentation (vectorised NumPy).
CROP_PAD = 4     # zero padding around each image before the 32x32 crop
# The augmentation's outcomes: a crop offset (dy, dx) in 0..2*pad each, and a flip or not.
CROP_OFFSETS = 2 * CROP_PAD + 1
VIEWS_PER_IMAGE = CROP_OFFSETS * CROP_OFFSETS * 2                        # 162
IDENTITY_VIEW = (CROP_PAD * CROP_OFFSETS + CROP_PAD) * 2                # the image as it is


def view_number(dy, dx, flip):
    """The augmentation outcome (dy, dx, flip) as one number in 0..VIEWS_PER_IMAGE-1."""
    return (np.asarray(dy) * CROP_OFFSETS + np.asarray(dx)) * 2 + np.asarray(flip, dtype=np.int64)


def draw_views(rng, n, pad=CROP_PAD):
    """Per image a crop offset (dy, dx) and a flip, drawn from ``rng``."""
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    flip = rng.random(n) < 0.5
    return dy, dx, flip


def crop_flip(images, dy, dx, flip, pad=CROP_PAD):
    """Per image the 32x32 crop at (dy, dx) of the zero-padded image, flipped horizontally if ``flip``."""
    n, c, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    rows = dy[:, None] + np.arange(h)                                    # (n, h)
    cols = dx[:, None] + np.arange(w)                                    # (n, w)
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def random_crop_flip(images, rng, pad=CROP_PAD):
    """Random 32x32 crop of the zero-padded images, then a random horizontal flip, per image."""
    return crop_flip(images, *draw_views(rng, len(images), pad), pad=pad)


class BatchViews(NamedTuple):
    """Which image (row of the loader's images) and which augmentation outcome each batch row is."""
    index: np.ndarray     # int64 (N,)
    view: np.ndarray      # int64 (N,), view_number(dy, dx, flip); IDENTITY_VIEW without augmentation


class Normalizer:
    """uint8 NCHW pixels -> float32 normalised with the dataset's per-channel mean/std."""

    def __init__(self, mean, std):
        self.scale = (1.0 / (255.0 * np.asarray(std, np.float32))).reshape(1, 3, 1, 1)
        self.shift = (np.asarray(mean, np.float32) / np.asarray(std, np.float32)).reshape(1, 3, 1, 1)

    def __call__(self, images):
        return images.astype(np.float32) * self.scale - self.shift


class BatchLoader:
    """Batches of (images float32 NCHW, labels int32) over one epoch.

    Training batches are shuffled and augmented with a generator seeded by (seed, epoch), so an
    epoch's batches depend only on the seed and the epoch number (a resumed run sees the same data).
    Every image is used: the last batch may be short. With ``num_shards > 1`` each shard (a rank of
    a data-parallel run) gets an equal slice of every global batch. Batches are prepared by a
    background thread while the network computes.
    """

    def __init__(self, images, labels, batch_size, normalizer, train, seed=0,
                 num_shards=1, shard_id=0, prefetch=2):
        self.images, self.labels = images, labels
        self.batch_size, self.normalizer, self.train = batch_size, normalizer, train
        self.seed, self.num_shards, self.shard_id, self.prefetch = seed, num_shards, shard_id, prefetch

    def __len__(self):
        return -(-len(self.labels) // self.batch_size)

    def _batches(self, epoch):
        n = len(self.labels)
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n) if self.train else np.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.images[idx]
            if self.train:
                # Augment the whole global batch, then slice: the draws then do not depend on the
                # number of shards, and N ranks see exactly the batch one process would.
                dy, dx, flip = draw_views(rng, len(idx))
                x = crop_flip(x, dy, dx, flip)
                view = view_number(dy, dx, flip)
            else:
                view = np.full(len(idx), IDENTITY_VIEW, np.int64)
            if self.num_shards > 1:
                part = np.array_split(np.arange(len(idx)), self.num_shards)[self.shard_id]
                x, idx, view = x[part], idx[part], view[part]
            yield self.normalizer(x), self.labels[idx], BatchViews(idx.astype(np.int64), view)

    def epoch(self, epoch=0, with_views=False):
        """Iterate over one epoch's batches, prepared ``prefetch`` batches ahead in a thread: (images,
        labels), or with ``with_views`` (images, labels, BatchViews)."""
        q = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        end = object()

        def produce():
            try:
                for item in self._batches(epoch):
                    if stop.is_set():
                        return
                    q.put(item)
            except BaseException as err:  # handed to the consumer, which re-raises it
                q.put(err)
                return
            q.put(end)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is end:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item if with_views else item[:2]
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(0.01)
