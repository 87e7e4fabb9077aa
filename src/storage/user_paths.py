"""Paths the package builds and shows (messages, logs), written the way the user writes them.

Windows accepts both ``/`` and ``\\``: a Git Bash user types ``./ckpts``, a cmd user ``.\\ckpts``.
Plain ``os.path.join`` would print ``./ckpts\\x.ckpt`` for the first; here a file name is added with
the separator the folder already uses, and default folders use the platform's own.
"""
import os


def below_cwd(*parts):
    """A default folder under the working directory: ``./ckpts`` on POSIX, ``.\\ckpts`` on Windows."""
    return os.path.join(os.curdir, *parts)


def join(folder, *names):
    """``os.path.join(folder, *names)`` continued in the folder's own separator: on Windows the one
    it uses last (``./ckpts`` + ``x`` -> ``./ckpts/x``, ``C:\\runs`` + ``x`` -> ``C:\\runs\\x``)."""
    path = os.path.join(folder, *names)
    if os.altsep and folder.rfind(os.altsep) > folder.rfind(os.sep):
        path = folder + path[len(folder):].replace(os.sep, os.altsep)
    return path
