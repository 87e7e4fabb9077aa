"""Exclusive operating-system locks on files, one way on every platform: ``flock`` on POSIX, a
one-byte ``msvcrt.locking`` range on Windows. The OS releases a lock when its process ends, however
it ends, so a killed process never leaves a stale one."""
import os
import time

if os.name == "nt":
    import msvcrt
else:
    import fcntl


def try_lock(fd, offset=0):
    """Lock ``fd`` or raise OSError at once if another holder has it. On Windows the lock is on the
    byte at ``offset`` (other processes cannot read a locked range: an offset past the file's content
    keeps it readable); POSIX locks the whole file."""
    if os.name == "nt":
        os.lseek(fd, offset, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def lock(fd, offset=0):
    """Lock ``fd``, waiting as long as another holder has it."""
    if os.name != "nt":
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    while True:     # msvcrt's waiting lock gives up after 10 s; another holder may need longer
        try:
            return try_lock(fd, offset)
        except OSError:
            time.sleep(0.01)


def unlock(fd, offset=0):
    if os.name == "nt":
        os.lseek(fd, offset, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
