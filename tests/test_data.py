"""CIFAR loading, augmentation, batching and the download path, on generated official-format data."""
import hashlib
import os
import pathlib
import tarfile

import numpy as np
import pytest
from cifar_fixtures import make_archive, write_cifar10, write_cifar100

from src import data
from src.data import DATASETS, BatchLoader, Normalizer, load_class_names, load_split, prepare_dataset, random_crop_flip
from src.errors import UserError


def test_cifar100_split_counts_dtypes_and_pixels(tmp_path):
    root = write_cifar100(str(tmp_path), n_train=120, n_test=40)
    x, y = load_split(root, "cifar100", "train")
    assert x.shape == (120, 3, 32, 32) and x.dtype == np.uint8
    assert y.shape == (120,) and y.dtype == np.int32 and y.max() < 100
    # Official layout: 1024 red values, then green, then blue, each 32x32 row-major.
    import pickle
    raw = pickle.load(open(os.path.join(root, "train"), "rb"), encoding="bytes")[b"data"]
    assert x[5, 1, 3, 7] == raw[5, 1024 + 3 * 32 + 7]
    xt, yt = load_split(root, "cifar100", "test")
    assert xt.shape == (40, 3, 32, 32)
    assert load_class_names(root, "cifar100")[:2] == ["class_0", "class_1"]


def test_cifar10_reads_all_five_batches(tmp_path):
    root = write_cifar10(str(tmp_path), n_per_batch=30, n_test=20)
    x, y = load_split(root, "cifar10", "train")
    assert x.shape == (150, 3, 32, 32) and set(np.unique(y)) == set(range(10))
    assert load_split(root, "cifar10", "test")[0].shape == (20, 3, 32, 32)
    assert prepare_dataset(str(tmp_path), "cifar10", download_missing=False) == root


def test_data_dir_may_be_the_extracted_folder_itself(tmp_path):
    root = write_cifar100(str(tmp_path), n_train=10, n_test=10)
    assert prepare_dataset(root, "cifar100", download_missing=False) == root


def test_augmentation_keeps_shape_changes_pixels_and_is_a_crop():
    rng = np.random.default_rng(0)
    imgs = rng.integers(1, 256, size=(64, 3, 32, 32)).astype(np.uint8)
    out = random_crop_flip(imgs, np.random.default_rng(1))
    assert out.shape == imgs.shape and out.dtype == np.uint8
    assert (out != imgs).any(axis=(1, 2, 3)).mean() > 0.8
    # Each output is a flipped-or-not window of the zero-padded input.
    padded = np.pad(imgs, ((0, 0), (0, 0), (4, 4), (4, 4)))
    for i in range(8):
        windows = [padded[i, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        assert any((out[i] == w).all() or (out[i] == w[..., ::-1]).all() for w in windows)


def test_normalizer_uses_dataset_mean_and_std():
    norm = Normalizer(DATASETS["cifar100"].mean, DATASETS["cifar100"].std)
    x = np.full((1, 3, 2, 2), 255, np.uint8)
    np.testing.assert_allclose(norm(x)[0, :, 0, 0],
                               (1 - np.array(DATASETS["cifar100"].mean)) / DATASETS["cifar100"].std, rtol=1e-5)


def test_loader_covers_every_image_and_test_order_is_fixed():
    x = np.arange(70 * 3072, dtype=np.int64).astype(np.uint8).reshape(70, 3, 32, 32)
    y = np.arange(70, dtype=np.int32)
    norm = Normalizer((0, 0, 0), (1, 1, 1))
    test = BatchLoader(x, y, 32, norm, train=False)
    batches = list(test.epoch())
    assert [len(b[1]) for b in batches] == [32, 32, 6] and len(test) == 3
    assert np.array_equal(np.concatenate([b[1] for b in batches]), y)
    again = list(test.epoch())
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))
    train = BatchLoader(x, y, 32, norm, train=True, seed=3)
    e0 = np.concatenate([b[1] for b in train.epoch(0)])
    e1 = np.concatenate([b[1] for b in train.epoch(1)])
    assert sorted(e0) == list(range(70)) and not np.array_equal(e0, e1)
    assert np.array_equal(e0, np.concatenate([b[1] for b in train.epoch(0)]))   # (seed, epoch) decide


def test_loader_shards_split_each_global_batch():
    x = np.zeros((10, 3, 32, 32), np.uint8)
    y = np.arange(10, dtype=np.int32)
    norm = Normalizer((0, 0, 0), (1, 1, 1))
    shards = [np.concatenate([b[1] for b in BatchLoader(x, y, 4, norm, True, 5, 2, r).epoch(0)])
              for r in (0, 1)]
    whole = np.concatenate([b[1] for b in BatchLoader(x, y, 4, norm, True, 5).epoch(0)])
    assert sorted(np.concatenate(shards)) == list(range(10))
    assert np.array_equal(np.concatenate([whole[:2], whole[4:6], whole[8:9]]), shards[0])


@pytest.fixture
def local_archive(tmp_path, monkeypatch):
    """A CIFAR-100 tar.gz served from a file:// URL, with its md5 as the expected one."""
    src = write_cifar100(str(tmp_path / "src"), n_train=20, n_test=10)
    archive = make_archive(src, str(tmp_path / "cifar-100-python.tar.gz"))
    md5 = hashlib.md5(open(archive, "rb").read()).hexdigest()
    info = DATASETS["cifar100"]
    patched = dict(DATASETS, cifar100=info.__class__(**{**info.__dict__, "url": pathlib.Path(archive).as_uri(),
                                                        "archive_md5": md5}))
    monkeypatch.setattr(data, "DATASETS", patched)
    return archive


def test_download_verifies_md5_and_extracts(local_archive, tmp_path):
    target = tmp_path / "dl"
    folder = prepare_dataset(str(target), "cifar100", download_missing=True)
    assert folder == str(target / "cifar-100-python")
    assert load_split(folder, "cifar100", "train")[0].shape == (20, 3, 32, 32)
    assert not list(target.glob("*.part"))
    # Present data is never downloaded again: the archive's URL may vanish.
    os.remove(local_archive)
    assert prepare_dataset(str(target), "cifar100", download_missing=True) == folder


def test_download_rejects_md5_mismatch(local_archive, tmp_path, monkeypatch):
    info = data.DATASETS["cifar100"]
    monkeypatch.setitem(data.DATASETS, "cifar100", info.__class__(**{**info.__dict__, "archive_md5": "0" * 32}))
    with pytest.raises(UserError, match="md5 .* does not match"):
        prepare_dataset(str(tmp_path / "dl"), "cifar100", download_missing=True)
    assert not os.listdir(tmp_path / "dl")          # neither the archive nor a .part is left


def test_unsafe_archive_member_is_refused(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../escaped.txt")
    (tmp_path / "out").mkdir()
    with pytest.raises(UserError, match="unsafe member"):
        data.safe_extract(str(evil), str(tmp_path / "out"))
    assert not (tmp_path / "escaped.txt").exists()
