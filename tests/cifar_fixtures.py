"""Tiny data sets in the exact official CIFAR "python version" format, made by the tests themselves."""
import os
import pickle
import tarfile

import numpy as np


def _images(labels, rng, learnable):
    """uint8 (N, 3072) images; with ``learnable`` each class has its own colour, so nets can fit it."""
    n = len(labels)
    noise = rng.integers(0, 256, size=(n, 3, 32, 32))
    if not learnable:
        return noise.astype(np.uint8).reshape(n, 3072)
    n_classes = int(labels.max()) + 1
    palette = np.random.default_rng(1234).integers(0, 256, size=(n_classes, 3))
    base = palette[labels][:, :, None, None]
    return np.clip(0.7 * base + 0.3 * noise, 0, 255).astype(np.uint8).reshape(n, 3072)


def write_cifar100(folder, n_train=200, n_test=100, n_classes=100, seed=0, learnable=True):
    """Write ``folder/cifar-100-python/{train,test,meta}``; returns the extracted folder."""
    rng = np.random.default_rng(seed)
    root = os.path.join(folder, "cifar-100-python")
    os.makedirs(root, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % n_classes
        rng.shuffle(labels)
        entry = {b"filenames": [f"img_{i}.png".encode() for i in range(n)],
                 b"batch_label": f"{name} batch".encode(),
                 b"fine_labels": labels.tolist(), b"coarse_labels": (labels // 5).tolist(),
                 b"data": _images(labels, rng, learnable)}
        with open(os.path.join(root, name), "wb") as f:
            pickle.dump(entry, f, protocol=2)
    meta = {b"fine_label_names": [f"class_{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"super_{i}".encode() for i in range(20)]}
    with open(os.path.join(root, "meta"), "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return root


def write_cifar10(folder, n_per_batch=40, n_test=50, seed=0):
    rng = np.random.default_rng(seed)
    root = os.path.join(folder, "cifar-10-batches-py")
    os.makedirs(root, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else n_per_batch
        labels = np.arange(n) % 10
        entry = {b"batch_label": name.encode(), b"labels": labels.tolist(),
                 b"data": _images(labels, rng, True),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        with open(os.path.join(root, name), "wb") as f:
            pickle.dump(entry, f, protocol=2)
    with open(os.path.join(root, "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f, protocol=2)
    return root


def make_archive(src_folder, archive_path):
    """tar.gz of an extracted data folder, as the official archive is laid out."""
    with tarfile.open(archive_path, "w:gz") as tar:
        tar.add(src_folder, arcname=os.path.basename(src_folder))
    return archive_path
