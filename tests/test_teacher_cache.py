"""The teacher's logit cache: views, exact round trip, only missing rows computed, and never a wrong
value after damage, truncation, a stale key, a killed writer or two writers at once."""
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import ROOT

from src.data import IDENTITY_VIEW, VIEWS_PER_IMAGE, BatchLoader, Normalizer, crop_flip, view_number
from src.teacher import cache as teacher_cache
from src.teacher.cache import HEADER_BYTES, CachedTeacher, CacheUnusable, Layout, inspect, open_store

KEY = {"teacher": "sha256-of-a-checkpoint", "engine": "fake"}
N_TRAIN, N_TEST, N_CLASSES = 20, 5, 10


def logits_of(entries):
    """The fake teacher's logits of entry numbers: distinct per entry and class."""
    entries = np.asarray(entries, np.float32)[:, None]
    return (entries * 1000 + np.arange(N_CLASSES, dtype=np.float32)) / 7


class FakeTeacher:
    """Logits from each image's first pixel (the test puts its entry number there); records the
    batch sizes it was asked for."""
    engine = "fake"

    def __init__(self):
        self.batches = []

    def __call__(self, images):
        self.batches.append(len(images))
        return logits_of(images[:, 0, 0, 0])


def batch_of(layout, split, index, view):
    """Images whose first pixel holds their entry number, with their BatchViews."""
    from src.data import BatchViews
    index, view = np.asarray(index, np.int64), np.asarray(view, np.int64)
    images = np.zeros((len(index), 3, 2, 2), np.float32)
    images[:, 0, 0, 0] = layout.entries(split, index, view)
    return images, BatchViews(index, view)


@pytest.fixture
def layout():
    return Layout(N_TRAIN, N_TEST, N_CLASSES)


def opened(tmp_path, layout, key=KEY, notes=None):
    return open_store(str(tmp_path / "t.logits"), layout, key,
                      (notes if notes is not None else []).append)


def test_views_number_every_augmentation_and_rebuild_each_batch_image():
    assert VIEWS_PER_IMAGE == 162 and IDENTITY_VIEW == view_number(4, 4, False)
    numbers = {int(view_number(dy, dx, f)) for dy in range(9) for dx in range(9) for f in (0, 1)}
    assert numbers == set(range(162))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 3, 32, 32), dtype=np.uint8)
    y = np.zeros(50, np.int32)
    norm = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    for shards in ((1, 0), (2, 1)):
        for images, labels, views in BatchLoader(x, y, 16, norm, True, 3, *shards).epoch(2, with_views=True):
            dy, rest = np.divmod(views.view, 18)
            dx, flip = np.divmod(rest, 2)
            assert np.array_equal(images, norm(crop_flip(x[views.index], dy, dx, flip.astype(bool))))
    plain = list(BatchLoader(x, y, 16, norm, False).epoch(with_views=True))
    assert all((v.view == IDENTITY_VIEW).all() for _, _, v in plain)
    assert np.array_equal(np.concatenate([v.index for _, _, v in plain]), np.arange(50))
    assert np.array_equal(plain[0][0], norm(x[:16]))       # the identity view is the image itself


def test_new_cache_is_allocated_whole_and_round_trips_bit_exactly(tmp_path, layout):
    store = opened(tmp_path, layout)
    assert os.path.getsize(store.path) == layout.file_bytes == HEADER_BYTES + (20 * 162 + 5) * 44
    index, view = np.array([3, 7, 19]), np.array([0, 161, 80])
    values = np.array([[np.nan, -0.0, 1e-45, 3.4e38] + [0.1] * 6] * 3, np.float32)
    store.write("train", index, view, values)
    out, found = store.read("train", [3, 7, 19, 3], [0, 161, 80, 1])
    assert found.tolist() == [True, True, True, False]
    assert out[:3].tobytes() == values.tobytes()           # NaN, -0 and denormals too
    assert not store.read("test", [3], [IDENTITY_VIEW])[1].any()   # the test split is apart
    assert store.stored() == 3
    store.write("train", index, view, values + 1)          # already stored: kept
    assert store.read("train", index, view)[0].tobytes() == values.tobytes() and store.stored() == 3
    store.close()
    again = opened(tmp_path, layout)                       # reopened: the same entries
    assert again.read("train", index, view)[0].tobytes() == values.tobytes() and again.stored() == 3
    again.close()


def test_only_missing_rows_go_through_the_teacher_and_values_equal_the_teachers(tmp_path, layout):
    teacher = FakeTeacher()
    cached = CachedTeacher(teacher, opened(tmp_path, layout), "train", note=None)
    first = batch_of(layout, "train", [0, 1, 2, 3], [5, 5, 5, 5])
    assert np.array_equal(cached(*first), logits_of(layout.entries("train", [0, 1, 2, 3], [5] * 4)))
    mixed = batch_of(layout, "train", [2, 9, 3, 4], [5, 5, 6, 5])
    expect = logits_of(layout.entries("train", [2, 9, 3, 4], [5, 5, 6, 5]))
    assert cached(*mixed).tobytes() == expect.tobytes()
    assert cached(*first).tobytes() == logits_of(layout.entries("train", [0, 1, 2, 3], [5] * 4)).tobytes()
    assert teacher.batches == [4, 3]                       # one full batch, then the 3 missing rows
    assert cached.take_counts() == (1 + 4, 12) and cached.take_counts() == (0, 0)
    test = CachedTeacher(teacher, cached.store, "test", note=None)
    assert test(*batch_of(layout, "test", [0, 4], [IDENTITY_VIEW] * 2)).shape == (2, N_CLASSES)
    assert cached.store.stored() == 9
    cached.store.close()


def entry_offset(layout, split, index, view):
    return layout.offset(layout.entries(split, [index], [view])[0])


def test_damaged_or_torn_entries_are_never_served_and_are_recomputed(tmp_path, layout):
    notes = []
    teacher = FakeTeacher()
    cached = CachedTeacher(teacher, opened(tmp_path, layout), "train", note=notes.append)
    images, views = batch_of(layout, "train", [1, 2, 3], [7, 7, 7])
    cached(images, views)
    path = cached.store.path
    with open(path, "r+b") as f:
        f.seek(entry_offset(layout, "train", 1, 7) + 5)     # one bit of a stored value flipped
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 1]))
        f.seek(entry_offset(layout, "train", 2, 7) + 8)     # a write cut short: half old, half new
        f.write(bytes(8))
    found = cached.store.read("train", [1, 2, 3], [7, 7, 7])[1]
    assert found.tolist() == [False, False, True]
    assert cached(images, views).tobytes() == logits_of(layout.entries("train", [1, 2, 3], [7] * 3)).tobytes()
    assert teacher.batches == [3, 2]
    assert notes == [f"teacher cache {path}: 2 entries failed their check (a killed run or damage) "
                     f"and were recomputed"]
    assert cached.store.read("train", [1, 2, 3], [7, 7, 7])[1].all()
    cached.store.close()


def test_an_entry_copied_to_another_place_does_not_match_there(tmp_path, layout):
    store = opened(tmp_path, layout)
    store.write("train", [4], [10], logits_of([0]))
    with open(store.path, "r+b") as f:
        f.seek(entry_offset(layout, "train", 4, 10))
        entry = f.read(layout.entry_bytes)
        f.seek(entry_offset(layout, "train", 4, 11))
        f.write(entry)
    assert store.read("train", [4, 4], [10, 11])[1].tolist() == [True, False]
    store.close()


def test_truncated_damaged_stale_and_foreign_files(tmp_path, layout):
    notes = []
    path = str(tmp_path / "t.logits")
    opened(tmp_path, layout).close()
    assert inspect(path, layout, KEY) == "ok"
    with open(path, "r+b") as f:
        f.truncate(layout.file_bytes - 1)
    assert inspect(path, layout, KEY) == "damaged"
    store = opened(tmp_path, layout, notes=notes)
    assert os.path.getsize(path) == layout.file_bytes and store.stored() == 0
    store.write("train", [0], [0], logits_of([0]))
    store.close()
    with open(path, "r+b") as f:                      # a damaged header
        f.seek(20)
        f.write(b"\xff")
    assert inspect(path, layout, KEY) == "damaged"
    opened(tmp_path, layout, notes=notes).close()
    assert inspect(path, layout, dict(KEY, engine="other")) == "stale"
    assert inspect(path, Layout(N_TRAIN, N_TEST, N_CLASSES + 1), KEY) == "stale"
    store = opened(tmp_path, layout, key=dict(KEY, teacher="retrained"), notes=notes)
    assert store.stored() == 0 and not store.read("train", [0], [0])[1].any()
    store.close()
    assert [n.split(": ", 1)[1] for n in notes] == [
        "damaged (bad header or length); replaced by an empty one",
        "damaged (bad header or length); replaced by an empty one",
        "made for another teacher, data or engine; replaced by an empty one"]
    notes.clear()
    assert sorted(os.listdir(tmp_path)) == ["t.logits", "t.logits.lock"]   # nothing left beside it
    (tmp_path / "t.logits.999.tmp").write_bytes(b"half a cache, its creator killed")
    opened(tmp_path, layout, key=dict(KEY, teacher="retrained again"), notes=notes).close()
    assert sorted(os.listdir(tmp_path)) == ["t.logits", "t.logits.lock"]
    foreign = tmp_path / "mine.ckpt"
    foreign.write_bytes(b"a user's file")
    with pytest.raises(CacheUnusable, match="is not a teacher cache"):
        open_store(str(foreign), layout, KEY, notes.append)
    assert foreign.read_bytes() == b"a user's file"


def test_too_little_disk_space_creates_nothing(tmp_path, layout, monkeypatch):
    monkeypatch.setattr(teacher_cache, "disk_free", lambda folder: layout.file_bytes)
    with pytest.raises(CacheUnusable, match=r"needs 0\.00 GB and 256 MB to spare; .* has 0\.00 GB free"):
        opened(tmp_path, layout)
    assert not os.path.exists(tmp_path / "t.logits")


WRITER = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {root!r})
    from src.data import BatchViews
    from src.teacher.cache import CachedTeacher, Layout, open_store
    layout = Layout({n_train}, {n_test}, {n_classes})
    def logits_of(entries):
        entries = np.asarray(entries, np.float32)[:, None]
        return (entries * 1000 + np.arange({n_classes}, dtype=np.float32)) / 7
    teacher = lambda images: logits_of(images[:, 0, 0, 0])
    cached = CachedTeacher(teacher, open_store({path!r}, layout, {key!r}, print), "train", print)
    rng = np.random.default_rng(int(sys.argv[1]))
    for step in range(int(sys.argv[2])):
        index = rng.integers(0, {n_train}, 16)
        view = rng.integers(0, 162, 16)
        entries = layout.entries("train", index, view)
        images = np.zeros((16, 3, 2, 2), np.float32)
        images[:, 0, 0, 0] = entries
        if cached(images, BatchViews(index, view)).tobytes() != logits_of(entries).tobytes():
            sys.exit("a wrong value was served")
        print("step", step, flush=True)
""")


def writer(tmp_path, layout, seed, steps):
    script = WRITER.format(root=ROOT, n_train=N_TRAIN, n_test=N_TEST, n_classes=N_CLASSES,
                           path=str(tmp_path / "t.logits"), key=KEY)
    out = open(tmp_path / f"writer{seed}.out", "w")
    return subprocess.Popen([sys.executable, "-c", script, str(seed), str(steps)], stdout=out,
                            stderr=subprocess.STDOUT, text=True)


def all_entries_correct_or_missing(tmp_path, layout):
    store = opened(tmp_path, layout)
    index = np.repeat(np.arange(N_TRAIN), VIEWS_PER_IMAGE)
    view = np.tile(np.arange(VIEWS_PER_IMAGE), N_TRAIN)
    out, found = store.read("train", index, view)
    expect = logits_of(layout.entries("train", index, view))
    store.close()
    assert out[found].tobytes() == expect[found].tobytes()
    return int(found.sum())


def test_concurrent_writers_and_readers_only_ever_see_right_values(tmp_path, layout):
    opened(tmp_path, layout).close()      # created first: the race here is over the entries
    procs = [writer(tmp_path, layout, seed, 150) for seed in (1, 2, 3)]
    for p in procs:
        assert p.wait(timeout=300) == 0, (tmp_path / f"writer{procs.index(p) + 1}.out").read_text()
    stored = all_entries_correct_or_missing(tmp_path, layout)
    assert stored > 1000
    store = opened(tmp_path, layout)
    assert store.stored() == stored       # every entry counted once, whoever stored it
    store.close()


def test_a_killed_writer_leaves_no_wrong_value_and_no_lock_behind(tmp_path, layout):
    opened(tmp_path, layout).close()
    proc = writer(tmp_path, layout, 4, 100000)
    log = tmp_path / "writer4.out"
    deadline = time.monotonic() + 120
    while log.read_text().count("step") < 20:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    proc.kill()                           # SIGKILL / TerminateProcess: no cleanup of any kind
    proc.wait(timeout=60)
    all_entries_correct_or_missing(tmp_path, layout)
    done = writer(tmp_path, layout, 5, 30)     # the dead writer's lock is gone
    assert done.wait(timeout=120) == 0, (tmp_path / "writer5.out").read_text()
