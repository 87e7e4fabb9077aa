"""The result file a benchmark writes with ``--json PATH``: what it measured, and where, when and how.

Shared by bench.py (the package's environment) and bench_torch.py (a PyTorch environment), so it
needs only the standard library and NumPy. benchmarks/render_tables.py turns such files into the docs'
tables, so no speed figure in the docs is typed by hand.
"""
import datetime
import json
import os
import platform
import shlex
import sys


def cpu_name():
    """The processor's marketing name: /proc/cpuinfo on Linux, else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def vector_isa():
    """The widest x86 vector extension the processor has (NumPy's run-time CPU detection), and the
    cap oneDNN is under (``ONEDNN_MAX_CPU_ISA``), which decides the kernels the benchmark ran."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:
        from numpy.core._multiarray_umath import __cpu_features__ as features
    widest = next((name for name in ("AVX512F", "AVX2", "AVX") if features.get(name)), "none")
    return {"AVX512F": "AVX-512"}.get(widest, widest), os.environ.get("ONEDNN_MAX_CPU_ISA")


def machine(sgemm_gflops=None):
    isa, cap = vector_isa()
    # OPENBLAS_CORETYPE: the kernels NumPy's GEMM ran, hence the limit the figures are divided by.
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "isa": isa, "onednn_max_cpu_isa": cap,
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "os": platform.system(),
            "python": platform.python_version(), "sgemm_gflops": sgemm_gflops}


def write_results(path, tool, settings, versions, cases, sgemm_gflops=None):
    """``cases``: {case: {field: value}}. Written whole (temporary file, then renamed)."""
    record = {"tool": tool,
              "command": " ".join(shlex.quote(a) for a in
                                 ["python", os.path.relpath(sys.argv[0]).replace(os.sep, "/"), *sys.argv[1:]]),
              "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": machine(sgemm_gflops), "versions": versions, "settings": settings, "cases": cases}
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    os.replace(temporary, path)
