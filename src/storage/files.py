"""The package's output files and folders: written whole or not at all, replaced and removed the same
way on Windows as on POSIX, and output folders checked before a run writes to them.

Two Windows rules get in the way: a read-only file cannot be replaced or deleted (MindSpore writes its
checkpoints and MindIR files read-only), and a file another program holds open cannot be replaced or
deleted either (an editor, Excel on a CSV, an antivirus or indexing scan of a file just written).
"""
import contextlib
import os
import shutil
import stat
import time

from ..errors import UserError

# A scan of a new file holds it for moments: retry for about 1.5 s before blaming another program.
RETRY_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8)


def make_writable(path):
    """Clear the read-only bit of ``path`` if it exists (Windows refuses to replace or delete the file
    otherwise; on POSIX the bit does not matter for either)."""
    try:
        os.chmod(path, os.stat(path).st_mode | stat.S_IWRITE)
    except OSError:
        pass    # missing, or not ours to change: the replace or delete itself reports what is wrong


def _retrying(action, path):
    """Run ``action()``; on Windows, retry while ``path`` is held open elsewhere, then one clear line."""
    for pause in RETRY_PAUSES + (None,):
        make_writable(path)
        try:
            return action()
        except PermissionError:
            if os.name != "nt":
                raise
            if pause is None:
                raise UserError(f"{path} is open in another program, so Windows does not let it be "
                                f"replaced or deleted: close it and run again (the file is "
                                f"unchanged)") from None
            time.sleep(pause)


def replace_file(tmp, path):
    """``os.replace(tmp, path)`` that also replaces a read-only ``path``, and on Windows waits briefly
    for a program holding ``path`` open (then a UserError; ``path`` keeps its previous content)."""
    _retrying(lambda: os.replace(tmp, path), path)


@contextlib.contextmanager
def written_atomically(path, tmp=None, before_replacing=None):
    """Yields a temporary path (``tmp``, default ``{path}.{pid}.tmp``) to write instead of ``path``;
    when the block succeeds it replaces ``path`` (replace_file), first handing an existing ``path`` to
    ``before_replacing`` if given (which may move it away). Either way no temporary file is left
    behind, and a failed block leaves ``path`` as it was."""
    tmp = tmp or f"{path}.{os.getpid()}.tmp"
    try:
        yield tmp
        if before_replacing and os.path.exists(path):
            before_replacing(path)
        replace_file(tmp, path)
    finally:
        if os.path.exists(tmp):
            remove_file(tmp)      # read-only too, if the writer made it so (MindSpore's exports)


def write_text_atomic(path, text):
    """Write ``path`` through a temporary file: it is either the old file or the whole new one."""
    with written_atomically(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def remove_file(path):
    """``os.remove(path)``, also of a read-only file (and, on Windows, one held open for a moment)."""
    _retrying(lambda: os.remove(path), path)


def remove_tree(folder):
    """Delete a private temporary folder and whatever it holds, read-only files included; never fails."""
    def clear_and_retry(func, path, _exc):
        make_writable(path)
        try:
            func(path)
        except OSError:
            pass
    shutil.rmtree(folder, onerror=clear_and_retry)


def file_in_the_way(path):
    """``path``, or the nearest of its parent folders that exists, if that is not a folder; else None.

    Creating a folder below a file fails with "Not a directory" on POSIX but "path not found" on
    Windows; naming the file says what is wrong on both.
    """
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    return path if path and not os.path.isdir(path) else None


def ensure_writable_dir(path, flag):
    blocker = file_in_the_way(path)
    if blocker == path:
        raise UserError(f"{flag} {path}: a file is in the way (expected a folder)")
    if blocker:
        raise UserError(f"{flag} {path}: the file {blocker} is in the way (expected a folder)")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        raise UserError(f"{flag} {path}: not a writable folder ({err.strerror or err})") from None
