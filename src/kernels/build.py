"""Building the package's CPU kernels (the oneDNN convolution, BatchNorm, max-pooling) on first use,
and caching them.

The kernels are compiled with the system's C++ compiler against the ``libdnnl.so.3`` that MindSpore
bundles, then checked against MindSpore's layers in a separate process (``check.py``): the check
has to run the kernels with oneDNN's processor features not yet fixed by this process. Only a library
that built and passed lands in the cache, under a name made of everything it depends on (the
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

SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
COMPILED = ("conv_kernel.cc", "batchnorm_kernel.cc", "maxpool_kernel.cc")
SOURCES = COMPILED + ("dnnl_subset.h", "threadpool.h")
LIBRARY = "libatskernels.so"
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


def mindspore_lib_dir():
    """MindSpore's ``lib`` folder (found without importing MindSpore)."""
    import importlib.util
    spec = importlib.util.find_spec("mindspore")
    if spec is None or not spec.submodule_search_locations:
        raise KernelUnavailable("MindSpore is not installed")
    return os.path.join(list(spec.submodule_search_locations)[0], "lib")


def find_compiler():
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    raise KernelUnavailable("no C++ compiler found (install g++, or set CXX)")


def compiler_identity(cxx):
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise KernelUnavailable(f"the C++ compiler {cxx} does not run ({err})") from None
    return out.splitlines()[0] if out else cxx


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


def compile_command(cxx, lib_dir, output):
    # -march=native: built on the machine it runs on (the cache key holds the processor's features).
    return [cxx, "-O3", "-march=native", "-fopenmp-simd", "-std=c++17", "-shared", "-fPIC", "-pthread",
            "-o", output, *(os.path.join(SOURCE_DIR, name) for name in COMPILED), f"-L{lib_dir}",
            "-l:libdnnl.so.3", f"-Wl,-rpath,{lib_dir}"]


def cache_key(cxx, lib_dir):
    import importlib.metadata
    digest = hashlib.sha256()
    for name in SOURCES:
        with open(os.path.join(SOURCE_DIR, name), "rb") as f:
            digest.update(f.read())
    for part in (" ".join(compile_command(cxx, lib_dir, LIBRARY)), compiler_identity(cxx),
                 importlib.metadata.version("mindspore"), processor_features(),
                 os.environ.get("ONEDNN_MAX_CPU_ISA", "")):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def platform_problem():
    """Why the kernels cannot run on this system at all, or None."""
    if sys.platform != "linux":
        return "MindSpore runs custom CPU operators on Linux only"
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"the kernels target x86-64 processors, not {platform.machine()}"
    return None


def kernel_library(log=None):
    """Path of the checked kernels' library, building and checking it first if the cache has none.

    ``log`` (a callable) is told when a build starts, since it takes a while. Raises
    KernelUnavailable with the reason when the kernels cannot be used here.
    """
    problem = platform_problem()
    if problem:
        raise KernelUnavailable(problem)
    lib_dir = mindspore_lib_dir()
    if not os.path.isfile(os.path.join(lib_dir, "libdnnl.so.3")):
        raise KernelUnavailable("this MindSpore has no bundled oneDNN (lib/libdnnl.so.3)")
    cxx = find_compiler()
    final = os.path.join(cache_dir(), f"kernels-{cache_key(cxx, lib_dir)}")
    if os.path.isfile(os.path.join(final, CHECK_FILE)):
        return os.path.join(final, LIBRARY)
    try:
        os.makedirs(cache_dir(), exist_ok=True)
        work = tempfile.mkdtemp(prefix=".building-", dir=cache_dir())
    except OSError as err:
        raise KernelUnavailable(f"cannot write the build cache {cache_dir()} ({err.strerror or err}; "
                                f"set ATS_CACHE_DIR)") from None
    try:
        if log:
            log(f"building the package's CPU kernels (convolution, BatchNorm, max-pooling) into {final} "
                f"(once per machine)")
        library = os.path.join(work, LIBRARY)
        build(cxx, lib_dir, library)
        report = self_check(library)
        with open(os.path.join(work, CHECK_FILE), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        try:
            os.rename(work, final)
        except OSError:
            if not os.path.isfile(os.path.join(final, CHECK_FILE)):   # not a concurrent build's win
                raise KernelUnavailable(f"cannot write the build cache {final}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return os.path.join(final, LIBRARY)


def build(cxx, lib_dir, library):
    try:
        proc = subprocess.run(compile_command(cxx, lib_dir, library), capture_output=True, text=True,
                              timeout=600)
    except (OSError, subprocess.SubprocessError) as err:
        raise KernelUnavailable(f"the C++ build failed ({err})") from None
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "error" in line] or proc.stderr.splitlines()
        raise KernelUnavailable(f"the C++ build failed: {errors[0].strip() if errors else proc.returncode}")


def self_check(library):
    """Run ``check.py`` on ``library`` in a fresh process; its JSON report, if it passed."""
    env = dict(os.environ, GLOG_v="3")
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
