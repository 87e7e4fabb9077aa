"""Building the package's CPU kernels (the oneDNN convolution, BatchNorm, max-pooling) on first use,
and caching them.

The kernels are compiled (compiler.py: ``$CXX``, else a working system g++ on Linux, else zig's clang
from the ``ziglang`` package of the requirements) against the oneDNN that MindSpore bundles: on Linux
linked to its ``libdnnl.so.3``; on Windows into a DLL that finds ``dnnl.dll`` in the running
MindSpore. Then they are checked against MindSpore's layers in a separate process (``check.py``): the
check has to run the kernels with oneDNN's processor features not yet fixed by this process. Only a
library that built and passed lands in the cache, under a name made of everything it depends on (the
sources, MindSpore's version, the compiler, the processor's features and oneDNN's ISA cap), by
renaming a finished folder into place: a cache entry is never half-written, and processes building
at the same time each use a complete one.
"""
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

from . import compiler
from .loader import environment

SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
COMPILED = ("conv_kernel.cc", "batchnorm_kernel.cc", "maxpool_kernel.cc", "plugin.cc", "dnnl_load.cc")
SOURCES = COMPILED + ("dnnl_subset.h", "dnnl_threadpool.h", "entry.h", "threadpool.h")
CHECK_FILE = "check.json"
ROOT = os.path.dirname(os.path.dirname(SOURCE_DIR))   # the repository: ``python -m src.kernels.check``


class KernelUnavailable(Exception):
    """The kernels cannot be used here; the message says why, in a few words."""


def cache_dir():
    """``$ATS_CACHE_DIR``, else ``$XDG_CACHE_HOME/ats-mindspore``, else ``~/.cache/ats-mindspore``."""
    if os.environ.get("ATS_CACHE_DIR"):
        return os.environ["ATS_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ats-mindspore")


def windows():
    return sys.platform == "win32"


def library_name():
    return "atskernels.dll" if windows() else "libatskernels.so"


def onednn_library():
    """The oneDNN MindSpore bundles: ``lib/libdnnl.so.3``, or ``dnnl.dll`` beside its Python files on
    Windows (found without importing MindSpore)."""
    import importlib.util
    spec = importlib.util.find_spec("mindspore")
    if spec is None or not spec.submodule_search_locations:
        raise KernelUnavailable("MindSpore is not installed")
    root = list(spec.submodule_search_locations)[0]
    return os.path.join(root, "dnnl.dll") if windows() else os.path.join(root, "lib", "libdnnl.so.3")


def compiler_identity(cxx):
    try:
        out = subprocess.run([*cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise KernelUnavailable(f"the C++ compiler {' '.join(cxx)} does not run ({err})") from None
    return out.splitlines()[0] if out else " ".join(cxx)


def processor_features():
    """The CPU flags line of /proc/cpuinfo: which oneDNN kernels run, hence what the check proved."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return platform.processor()


def compile_command(cxx, onednn, output):
    # -march=native: built on the machine it runs on (the cache key holds the processor's features).
    common = [*cxx, "-O3", "-march=native", "-fopenmp-simd", "-std=c++17", "-shared", "-o", output,
              *(os.path.join(SOURCE_DIR, name) for name in COMPILED)]
    if windows():
        # MinGW's g++ would otherwise make the DLL need its own runtime DLLs, which are not on a
        # Windows user's PATH; zig links its C++ runtime into the DLL anyway (and makes an archive
        # of a static shared library).
        return common + ([] if "ziglang" in cxx else ["-static"])
    lib_dir = os.path.dirname(onednn)
    return common + ["-fPIC", "-pthread", f"-L{lib_dir}", "-l:libdnnl.so.3", f"-Wl,-rpath,{lib_dir}"]


def cache_key(cxx, onednn):
    import importlib.metadata
    digest = hashlib.sha256()
    for name in SOURCES:
        with open(os.path.join(SOURCE_DIR, name), "rb") as f:
            digest.update(f.read())
    for part in (" ".join(compile_command(cxx, onednn, library_name())), compiler_identity(cxx),
                 importlib.metadata.version("mindspore"), processor_features(),
                 os.environ.get("ONEDNN_MAX_CPU_ISA", "")):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def platform_problem():
    """Why the kernels cannot run on this system at all, or None."""
    if sys.platform not in ("linux", "win32"):
        return f"the kernels are built on Linux and Windows only, not {sys.platform}"
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"the kernels target x86-64 processors, not {platform.machine()}"
    return None


def choose_compiler(onednn):
    """(compiler, its cache entry): the first of compiler.py's candidates whose build is cached or that
    works. A system compiler is probed only when its build is not cached: runs that find their
    kernels pay nothing for the probe."""
    broken = []
    for cxx, probe in compiler.candidates(windows()):
        try:
            final = os.path.join(cache_dir(), f"kernels-{cache_key(cxx, onednn)}")
        except KernelUnavailable:
            if not probe:
                raise
        else:
            if not probe or os.path.isfile(os.path.join(final, CHECK_FILE)) or compiler.works(cxx):
                return cxx, final
        broken.append(cxx[0])
    if broken:
        raise KernelUnavailable(f"no working C++ compiler found ({', '.join(broken)} failed a test build; "
                                f"pip install ziglang, or set CXX)")
    raise KernelUnavailable("no C++ compiler found (pip install ziglang, or set CXX)")


def kernel_library(log=None):
    """Path of the checked kernels' library, building and checking it first if the cache has none.

    ``log`` (a callable) is told when a build starts, since it takes a while. Raises
    KernelUnavailable with the reason when the kernels cannot be used here.
    """
    problem = platform_problem()
    if problem:
        raise KernelUnavailable(problem)
    onednn = onednn_library()
    if not os.path.isfile(onednn):
        raise KernelUnavailable(f"this MindSpore has no bundled oneDNN ({os.path.basename(onednn)})")
    cxx, final = choose_compiler(onednn)
    if os.path.isfile(os.path.join(final, CHECK_FILE)):
        return os.path.join(final, library_name())
    try:
        os.makedirs(cache_dir(), exist_ok=True)
        work = tempfile.mkdtemp(prefix=".building-", dir=cache_dir())
    except OSError as err:
        raise KernelUnavailable(f"cannot write the build cache {cache_dir()} ({err.strerror or err}; "
                                f"set ATS_CACHE_DIR)") from None
    try:
        if log:
            log(f"building the package's CPU kernels (convolution, BatchNorm, max-pooling) with "
                f"{' '.join(cxx)} into {final} (once per machine)")
        library = os.path.join(work, library_name())
        build(cxx, onednn, library)
        report = dict(self_check(library), compiler=" ".join(cxx))
        with open(os.path.join(work, CHECK_FILE), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        try:
            os.rename(work, final)
        except OSError:
            if not os.path.isfile(os.path.join(final, CHECK_FILE)):   # not a concurrent build's win
                raise KernelUnavailable(f"cannot write the build cache {final}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return os.path.join(final, library_name())


def build(cxx, onednn, library):
    try:
        proc = subprocess.run(compile_command(cxx, onednn, library), capture_output=True, text=True,
                              timeout=1200)
    except (OSError, subprocess.SubprocessError) as err:
        raise KernelUnavailable(f"the C++ build failed ({err})") from None
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "error" in line] or proc.stderr.splitlines()
        raise KernelUnavailable(f"the C++ build failed: {errors[0].strip() if errors else proc.returncode}")


def self_check(library):
    """Run ``check.py`` on ``library`` in a fresh process; its JSON report, if it passed."""
    env = dict(os.environ, GLOG_v="3", **environment(library))
    try:
        proc = subprocess.run([sys.executable, "-m", "src.kernels.check", library], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as err:
        raise KernelUnavailable(f"their self-check did not run ({err})") from None
    lines = proc.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise KernelUnavailable(f"their self-check against MindSpore's layers crashed ({tail.strip()})") from None
    if not report.get("passed"):
        raise KernelUnavailable(f"their self-check against MindSpore's layers failed ({report.get('failure')})")
    return report
