"""A file of the frozen teacher's logits per (training image, augmentation view), plus the test
split's, shared by every run of the same teacher on the same data.

The augmentation has ``VIEWS_PER_IMAGE`` (162) outcomes per image (data.py), so the file has one
fixed-size entry per (image, view): the float32 logits exactly as the teacher returned them, then a
4-byte marker written after them, ``VALID | crc32(logits, seed = entry number)``. An entry counts only
if its marker matches its bytes, so a never-written entry (zeros), an entry torn by a killed run, a
crash or a full disk, one damaged on disk and one written into the wrong place are all told apart
from a stored value and recomputed; a wrong value is never served.

Layout: a header (``HEADER_BYTES``: format, shape, the key's digest and description, their crc32, and
a count of stored entries), then the training entries (image-major, ``VIEWS_PER_IMAGE`` per image),
then the test entries (one view). The file is allocated whole when it is created (so no later write
can fail for space) and read and written with positioned file I/O: the operating system's page cache
holds what is hot, and the process's resident memory does not grow with the file.

Writers (two runs, msrun's ranks, a sweep and a single run) take an OS file lock on ``<file>.lock``
for each batch they store and for creating or replacing the file; the OS releases it when a process
dies. Readers take none: a concurrent write is at worst seen as a missing entry.
"""
import glob
import hashlib
import json
import os
import shutil
import struct
import zlib

import numpy as np

from ..data import VIEWS_PER_IMAGE
from ..storage.file_lock import lock, unlock

MAGIC = b"ATSLOGIT"
FORMAT_VERSION = 1
HEADER_BYTES = 4096
# magic, format version, training images, views per image, test images, classes, key digest (sha256)
HEADER = struct.Struct("<8sIQIQI32s")
CRC = struct.Struct("<I")
COUNT = struct.Struct("<Q")
COUNT_OFFSET = HEADER_BYTES - COUNT.size      # entries stored so far (outside the header's crc)
VALID = 0x80000000                            # set in every written marker; a zeroed entry lacks it
# Space a new cache leaves free on its disk, for the checkpoints and logs of the runs that use it.
RESERVE_BYTES = 256 * 2 ** 20
SPLITS = ("train", "test")


class CacheUnusable(Exception):
    """The cache cannot be used (no room, a foreign file in its place, ...); the message says why."""


def array_digest(array):
    """sha256 of an array's dtype, shape and bytes."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.data)
    return digest.hexdigest()


def key_digest(key):
    """The 32-byte sha256 of the key (a JSON-serialisable dict) in canonical form."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).digest()


class Layout:
    """Where each entry of a cache of ``n_train`` training and ``n_test`` test images lies."""

    def __init__(self, n_train, n_test, n_classes):
        self.n_train, self.n_test, self.n_classes = int(n_train), int(n_test), int(n_classes)
        self.value_bytes = 4 * self.n_classes
        self.entry_bytes = self.value_bytes + CRC.size
        self.n_entries = self.n_train * VIEWS_PER_IMAGE + self.n_test
        self.file_bytes = HEADER_BYTES + self.n_entries * self.entry_bytes

    def entries(self, split, index, view):
        """Entry numbers of the images ``index`` (rows of the split) seen in views ``view``."""
        index = np.asarray(index, np.int64)
        if split == "train":
            return index * VIEWS_PER_IMAGE + np.asarray(view, np.int64)
        return self.n_train * VIEWS_PER_IMAGE + index

    def offset(self, entry):
        return HEADER_BYTES + int(entry) * self.entry_bytes


def marker(value_bytes, entry):
    """The validity marker of an entry holding ``value_bytes``: its number seeds the crc, so a value
    written into another entry's place does not match either."""
    return VALID | (zlib.crc32(value_bytes, int(entry) & 0xFFFFFFFF) & (VALID - 1))


def header_bytes(layout, key):
    """The header block of a new file: fixed fields, the key as JSON, their crc32, count zero."""
    fields = HEADER.pack(MAGIC, FORMAT_VERSION, layout.n_train, VIEWS_PER_IMAGE, layout.n_test,
                         layout.n_classes, key_digest(key))
    text = json.dumps(key, sort_keys=True).encode()
    body = fields + CRC.pack(len(text)) + text
    if len(body) + CRC.size > COUNT_OFFSET:
        raise ValueError("teacher cache key too long for the header")
    block = body + CRC.pack(zlib.crc32(body))
    return block + bytes(HEADER_BYTES - len(block))


def inspect(path, layout, key):
    """What is at ``path``: "missing", "ok", "foreign" (not a cache file), "damaged" (a cache file
    with a bad header or the wrong length) or "stale" (a cache of another key or shape)."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return "missing"
    if not head.startswith(MAGIC):
        return "foreign"
    if len(head) < HEADER.size + CRC.size:
        return "damaged"
    (n_text,) = CRC.unpack_from(head, HEADER.size)
    end = HEADER.size + CRC.size + n_text
    if end + CRC.size > COUNT_OFFSET or CRC.unpack_from(head, end)[0] != zlib.crc32(head[:end]):
        return "damaged"
    _, version, n_train, n_views, n_test, n_classes, digest = HEADER.unpack_from(head)
    if (version, n_train, n_views, n_test, n_classes, digest) != (
            FORMAT_VERSION, layout.n_train, VIEWS_PER_IMAGE, layout.n_test, layout.n_classes,
            key_digest(key)):
        return "stale"
    return "ok" if size == layout.file_bytes else "damaged"


class FileLock:
    """An exclusive OS lock on a small file beside the cache: ``fcntl.flock`` on POSIX, ``msvcrt``
    byte locking on Windows; the OS drops it when the process ends, however it ends. The file is never
    removed (unlike output_guard.py's): a writer that had it open would then lock a file without a
    name while another locked a new one."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)

    def __enter__(self):
        lock(self.fd)
        return self

    def __exit__(self, *exc):
        unlock(self.fd)

    def close(self):
        os.close(self.fd)


def disk_free(folder):
    return shutil.disk_usage(folder).free


def allocate(path, size):
    """Give the file ``path`` its whole size on disk now (ENOSPC here, not in a later write)."""
    with open(path, "r+b") as f:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(f.fileno(), 0, size)
        else:
            f.truncate(size)      # NTFS allocates the extended file (reads of it give zeros)
        f.flush()
        os.fsync(f.fileno())


def create(path, layout, key):
    """Write a new empty cache to a temporary name and rename it to ``path`` once complete. Called
    under the lock: a temporary file already there is a killed creator's, and is removed first."""
    for leftover in glob.glob(f"{glob.escape(path)}.*.tmp"):
        os.remove(leftover)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(header_bytes(layout, key))
        allocate(tmp, layout.file_bytes)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def open_store(path, layout, key, note):
    """The ``LogitStore`` at ``path`` for ``key``: opened if it matches, else created (an absent,
    stale or damaged cache file; ``note`` gets one line saying which was replaced). Raises
    ``CacheUnusable`` if it cannot be: a foreign file in the way, too little free disk space, a file
    another process holds open that would have to be replaced (Windows), or an OS error."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        lock = FileLock(f"{path}.lock")
    except OSError as err:
        raise CacheUnusable(f"cannot write in {folder} ({err.strerror or err})") from None
    try:
        with lock:
            state = inspect(path, layout, key)
            if state == "foreign":
                raise CacheUnusable(f"{path} exists and is not a teacher cache (left as it is)")
            if state != "ok":
                held = os.path.getsize(path) if state != "missing" else 0
                free = disk_free(folder) + held
                if free < layout.file_bytes + RESERVE_BYTES:
                    raise CacheUnusable(
                        f"{path} needs {layout.file_bytes / 1e9:.2f} GB and "
                        f"{RESERVE_BYTES / 2 ** 20:.0f} MB to spare; {folder} has "
                        f"{free / 1e9:.2f} GB free")
                if state != "missing":
                    os.remove(path)    # Windows refuses while another run has it open: OSError
                create(path, layout, key)
                if state != "missing":
                    why = ("made for another teacher, data or engine" if state == "stale"
                           else "damaged (bad header or length)")
                    note(f"teacher cache {path}: {why}; replaced by an empty one")
            return LogitStore(path, layout, lock)
    except OSError as err:
        lock.close()
        raise CacheUnusable(f"{path}: {err.strerror or err}") from None
    except CacheUnusable:
        lock.close()
        raise


class LogitStore:
    """Reads and writes entries of an open cache file (see the module's docstring)."""

    def __init__(self, path, layout, lock):
        self.path, self.layout, self.lock = path, layout, lock
        self.file = open(path, "r+b", buffering=0)
        self.repaired = 0     # entries found written but failing their marker, since opened

    @property
    def closed(self):
        return self.file.closed

    def close(self):
        if not self.closed:
            self.file.close()
            self.lock.close()

    def _read(self, offset, size):
        if hasattr(os, "pread"):
            return os.pread(self.file.fileno(), size, offset)
        self.file.seek(offset)
        return self.file.read(size)

    def _write(self, offset, data):
        if hasattr(os, "pwrite"):
            os.pwrite(self.file.fileno(), data, offset)
        else:
            self.file.seek(offset)
            self.file.write(data)

    def _valid(self, raw, entry):
        n = self.layout.value_bytes
        return len(raw) == self.layout.entry_bytes and CRC.unpack_from(raw, n)[0] == marker(raw[:n], entry)

    def read(self, split, index, view):
        """(logits float32 (N, C), found bool (N,)): the stored rows; rows not found are undefined."""
        entries = self.layout.entries(split, index, view)
        out = np.empty((len(entries), self.layout.n_classes), np.float32)
        found = np.zeros(len(entries), bool)
        size = self.layout.entry_bytes
        for i, entry in enumerate(entries):
            raw = self._read(self.layout.offset(entry), size)
            if self._valid(raw, entry):
                out[i] = np.frombuffer(raw, np.float32, self.layout.n_classes)
                found[i] = True
        return out, found

    def write(self, split, index, view, logits):
        """Store ``logits`` (float32 (N, C)) for the images ``index`` in views ``view``; an entry some
        other process stored meanwhile is kept."""
        logits = np.ascontiguousarray(logits, np.float32)
        entries = self.layout.entries(split, index, view)
        size, n = self.layout.entry_bytes, self.layout.value_bytes
        with self.lock:
            added = 0
            for entry, row in zip(entries, logits):
                offset = self.layout.offset(entry)
                old = self._read(offset, size)
                if self._valid(old, entry):
                    continue
                if any(old[n:]):
                    self.repaired += 1     # written once, but torn (a killed run) or damaged since
                value = row.tobytes()
                self._write(offset, value + CRC.pack(marker(value, entry)))
                added += 1
            if added:
                self._write(COUNT_OFFSET, COUNT.pack(self.stored() + added))

    def stored(self):
        """Entries stored so far, as counted by the writers (a run killed between storing a batch
        and counting it leaves the count short by that batch)."""
        return min(COUNT.unpack(self._read(COUNT_OFFSET, COUNT.size))[0], self.layout.n_entries)

    def size_on_disk(self):
        st = os.stat(self.path)
        return st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size


class CachedTeacher:
    """The teacher's logits for batches of one image set (``split``) with their views: rows stored in
    ``store`` are read, the missing ones computed by ``teacher`` (as one smaller batch) and stored.

    ``note`` gets one line if the cache fails mid-run (the teacher then runs live for the rest) or
    finds entries that failed their marker (recomputed). Counts what it served for the epoch's record.
    """

    def __init__(self, teacher, store, split, note):
        if split not in SPLITS:
            raise ValueError(f"split {split!r}: expected one of {SPLITS}")
        self.teacher, self.store, self.split, self.note = teacher, store, split, note
        self.engine = getattr(teacher, "engine", None)
        self.served = self.seen = 0
        self.reported_repairs = 0

    def __call__(self, images, views):
        self.seen += len(images)
        if self.store is None or self.store.closed:     # given up, here or by its other split
            return self.teacher(images)
        try:
            out, found = self.store.read(self.split, views.index, views.view)
        except OSError as err:
            return self._give_up(err, images)
        self.served += int(found.sum())
        if found.all():
            return out
        missing = ~found
        computed = self.teacher(images if not found.any() else images[missing])
        computed = np.ascontiguousarray(computed, np.float32)
        try:
            self.store.write(self.split, views.index[missing], views.view[missing], computed)
        except OSError as err:
            self._give_up(err)
        self._report_repairs()
        if not found.any():
            return computed
        out[missing] = computed
        return out

    def take_counts(self):
        """(rows served from the cache, rows) since the last call."""
        counts = (self.served, self.seen)
        self.served = self.seen = 0
        return counts

    def _give_up(self, err, images=None):
        self.note(f"teacher cache {self.store.path}: {err.strerror or err}; the teacher runs live "
                  f"for the rest of this run")
        self.store.close()
        self.store = None
        return None if images is None else self.teacher(images)

    def _report_repairs(self):
        if self.store is not None and self.store.repaired > self.reported_repairs:
            self.note(f"teacher cache {self.store.path}: {self.store.repaired - self.reported_repairs} "
                      f"entries failed their check (a killed run or damage) and were recomputed")
            self.reported_repairs = self.store.repaired
