"""A run's hold on its outputs: one writer at a time, and a fresh run keeps what it replaces.

One writer: a run holds an operating-system lock (file_lock.py) on ``{ckpt_dir}/.{stem}.lock`` for as
long as it runs. The OS releases it when the process ends, however it ends, so a killed run leaves
no stale lock; a second run on the same outputs stops at once. A run that ends removes the file: a run
that had opened it just before then locks a file without a name, so a run holds the lock only once it
has checked that the file it locked is still the one at the path (POSIX; Windows removes no open file).

Keeping: a fresh run (not a resume) that finds an earlier run's files under its names first moves
them, whole, into ``{ckpt_dir}/replaced/{stem}-{date}-{time}/``; exports, converted checkpoints and
the analysis tables do the same with a file they would overwrite. Nothing is deleted.
"""
import datetime
import errno
import os
import shutil

from ..errors import UserError
from ..storage.file_lock import try_lock
from ..storage.files import remove_file, replace_file
from ..storage.run_files import replaced_folder
from ..storage.user_paths import join

# On Windows the lock is on a byte past the holder's description, which stays readable (file_lock.py).
_LOCKED_OFFSET = 1 << 20
# Each further try means a run ended (and removed the file) between this one's opening and locking it.
_TRIES = 10


def open_lock_file(path):
    """The lock file at ``path``, opened (made if missing), not yet locked."""
    return open(path, "a+b")


class OutputLock:
    """The exclusive lock on one run's outputs (``RunFiles``), held until released or until the
    process ends."""

    def __init__(self, files):
        self.files, self.path, self.handle = files, files.lock(), None

    def acquire(self):
        """Take the lock, or raise a UserError naming the outputs and the process holding them."""
        for _ in range(_TRIES):
            if self._take(open_lock_file(self.path)):
                return self
        raise self._busy("")

    def _take(self, handle):
        """Lock the opened lock file ``handle`` and hold it: True; or False (closed) if it no longer has
        its name; or raise if another run holds it."""
        try:
            try_lock(handle.fileno(), _LOCKED_OFFSET)
        except OSError:
            handle.seek(0)
            holder = handle.read(100).decode("utf-8", "replace").strip()
            handle.close()
            raise self._busy(holder) from None
        if not _still_at(handle, self.path):
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}".encode())
        handle.flush()
        self.handle = handle
        return True

    def _busy(self, holder):
        return UserError(f"another run is writing {self.files.ckpt} and its -last/-best checkpoints"
                         f"{f' ({holder})' if holder else ''}: wait for it to end, or choose another "
                         f"--ckpt_name or --ckpt_dir")

    def release(self):
        """Let go of the lock and remove its file (a killed run leaves the file, but no lock)."""
        if self.handle is None:
            return
        handle, self.handle = self.handle, None
        if os.name == "nt":
            handle.close()    # Windows removes no open file
        try:
            # POSIX: removed while still held. Removed after, it could be the next run's already
            # (locked and checked in between); removed before, the next run finds it nameless (_take).
            os.remove(self.path)
        except OSError:
            pass    # Windows: another process has just opened it, and will find it free
        handle.close()


def _still_at(handle, path):
    """Whether the open file ``handle`` is still the one at ``path``. Always on Windows, where no open
    file can be removed (whether its file ids are meaningful depends on the file system)."""
    if os.name == "nt":
        return True
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def set_aside(paths, parent, label, now=None):
    """Move those of ``paths`` that exist, whole, into a new folder ``replaced_folder(parent, label,
    date-time)``; returns (that folder, the names moved), or None if none existed."""
    present = [p for p in paths if os.path.isfile(p)]
    if not present:
        return None
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    folder, n = replaced_folder(parent, label, stamp), 1
    while os.path.exists(folder):      # twice within one second
        n += 1
        folder = replaced_folder(parent, label, f"{stamp}-{n}")
    try:
        os.makedirs(folder)
        for path in present:
            _move(path, join(folder, os.path.basename(path)))
    except OSError as err:
        raise UserError(f"cannot keep the earlier files in {folder} ({err.strerror or err}); nothing "
                        f"was deleted") from None
    return folder, [os.path.basename(p) for p in present]


def set_aside_earlier_run(files):
    """``set_aside`` for a fresh training run: the files of an earlier run under its names."""
    return set_aside(files.of_a_finished_run(), files.ckpt_dir, files.stem)


def keep_before_writing(paths, parent, label, say=print):
    """Before ``paths`` (the analysis tables) are written anew: ``set_aside`` the existing ones and
    say where they went."""
    kept = set_aside(paths, parent, label)
    if kept:
        say(f"kept the earlier {', '.join(kept[1])} in {kept[0]}")


def keeper(parent, label, say=print):
    """A ``before_replacing`` hook (files.written_atomically, checkpoint.save_atomic): the file a
    complete new one is about to replace is kept, as ``keep_before_writing`` keeps it."""
    return lambda path: keep_before_writing([path], parent, label, say)


def _move(path, target):
    try:
        replace_file(path, target)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        shutil.copy2(path, target)     # the log folder on another file system than the checkpoints
        remove_file(path)
