"""Which C++ compiler builds the package's kernels (build.py).

In order: ``$CXX`` if set; on Linux a system compiler (``g++``, ``c++``, ``clang++``) that works;
then zig's clang from the ``ziglang`` package of the requirements, which needs nothing of the system,
so that the kernels build wherever the requirements install (a fresh Ubuntu has no g++, Windows no
compiler at all). On Windows zig comes before a MinGW-w64 ``g++`` or LLVM's ``clang++`` on PATH.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

# What a system compiler must build to be used: C++17 headers the kernels include, threads, a shared
# library. A stub g++, or one without its headers or linker, fails here in well under a second.
PROBE = """#include <mutex>
#include <thread>
int ats_probe() {
    std::mutex m;
    std::lock_guard<std::mutex> lock(m);
    return static_cast<int>(std::thread::hardware_concurrency());
}
"""


def zig():
    """The command of zig's C++ compiler, or None if the ``ziglang`` package is not installed."""
    return [sys.executable, "-m", "ziglang", "c++"] if importlib.util.find_spec("ziglang") else None


def candidates(windows):
    """The compilers found, best first, as (command as a list, whether it must pass ``works`` before
    it is used): $CXX is the user's choice and zig comes whole, but a system compiler may be broken."""
    cxx = os.environ.get("CXX")
    if cxx and shutil.which(cxx):
        yield [shutil.which(cxx)], False
    if windows:
        if zig():
            yield zig(), False
        for name in ("g++", "clang++"):   # MinGW-w64's, LLVM's
            if shutil.which(name):
                yield [shutil.which(name)], False
        return
    for name in ("g++", "c++", "clang++"):
        if shutil.which(name):
            yield [shutil.which(name)], True
    if zig():
        yield zig(), False


def works(cxx):
    """Whether ``cxx`` builds ``PROBE`` into a shared library (about 0.3 s for g++)."""
    try:
        with tempfile.TemporaryDirectory(prefix="ats-probe-") as folder:
            source = os.path.join(folder, "probe.cc")
            with open(source, "w", encoding="utf-8") as f:
                f.write(PROBE)
            library = os.path.join(folder, "probe.so")
            command = [*cxx, "-std=c++17", "-fPIC", "-pthread", "-shared", "-o", library, source]
            return subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
