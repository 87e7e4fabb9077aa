"""A C++ compiler for the Windows Python under Wine (.ci/windows sets ``CXX`` to g++.bat beside this
file): Debian's MinGW-w64 g++, a Linux program, started through Wine's ``start /unix``, which
neither waits for it nor passes back its output or exit status: mingw.sh leaves them in files, and
this waits for the status file. (zig 0.17's Windows build, the compiler of the requirements, runs under Wine 8.0 but fails
to compile: ``manifest_create Unexpected`` from its cache.)"""
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 900   # seconds: a build of the kernels takes about one minute


def unix(path):
    """The Linux path of a Windows path, as Wine maps it (C: is the prefix's drive_c, Z: is /)."""
    convert = ctypes.WinDLL("kernel32").wine_get_unix_file_name
    convert.argtypes, convert.restype = [ctypes.c_wchar_p], ctypes.c_char_p
    return convert(os.path.abspath(path)).decode()


def argument(arg):
    return unix(arg) if re.match(r"[A-Za-z]:\\", arg) else arg


def main():
    out = tempfile.mkdtemp(dir=HERE)
    try:
        subprocess.run(["start", "/unix", unix(os.path.join(HERE, "mingw.sh")), unix(out), *map(argument, sys.argv[1:])],
                       check=True)
        status_file = os.path.join(out, "status")
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(status_file):
            if time.monotonic() > deadline:
                sys.exit(f"relay.py: MinGW g++ did not finish in {TIMEOUT} s")
            time.sleep(0.2)
        with open(status_file) as f:
            status = int(f.read())
        for name, stream in (("stdout", sys.stdout), ("stderr", sys.stderr)):
            with open(os.path.join(out, name)) as f:
                stream.write(f.read())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
