"""What a run writes about itself: the log file, the metrics file, the run record, the progress bar."""
import datetime
import json
import os
import platform
import sys

import numpy as np

from .. import __version__
from ..storage.files import write_text_atomic


def environment_info(device_target, conv_engine="mindspore"):
    import mindspore as ms
    return {
        "package_version": __version__, "mindspore": ms.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "device_target": device_target, "conv_engine": conv_engine,
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
    }


def epoch_line(rec):
    """The spec's per-epoch line: ``[Epoch:1] [Loss:...] [TrAcc:...] [TeAcc:...]``."""
    return (f"[Epoch:{rec['epoch']}] [Loss:{rec['loss']:.6f}] [TrAcc:{rec['train_acc']:.6f}] "
            f"[TeAcc:{rec['test_acc']:.6f}]")


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


class RunLog:
    """Log file (appended: run header with every flag, then one line per epoch), metrics file
    (JSON lines, one record per epoch, rewritten atomically) and the run record (JSON).

    Epoch lines also go to stdout; the progress bar goes to stderr and only on a terminal.
    ``enabled=False`` (ranks other than 0 of a data-parallel run) writes and prints nothing.
    """

    def __init__(self, log_path, metrics_path, record_path, enabled=True):
        self.log_path, self.metrics_path, self.record_path = log_path, metrics_path, record_path
        self.enabled = enabled
        self._held = None    # (record, log text) from start() until begin()

    def _append(self, text):
        if self._held is not None:
            self._held[1].append(text)
            return
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(text)

    def start(self, args, env, resumed_from=None):
        """Prepare the run record and the log header; ``begin()`` writes them (and the messages
        logged in between), so a run refused before training changes no file of an earlier run."""
        if not self.enabled:
            return
        now = datetime.datetime.now().isoformat(timespec="seconds")
        record = {"started": now, "command": " ".join(sys.argv), "args": args, "environment": env,
                  "resumed_from": resumed_from}
        lines = [f"# run started {now}" + (f", resumed from {resumed_from}" if resumed_from else "")]
        lines += [f"{k}: {v}" for k, v in args.items()]
        lines += [f"# {k}: {v}" for k, v in env.items()]
        self._held = (record, ["\n".join(lines) + "\n"])

    def begin(self):
        """Training starts: write what ``start()`` prepared and the messages held since."""
        if self._held is None:
            return
        (record, texts), self._held = self._held, None
        write_text_atomic(self.record_path, json.dumps(record, indent=2) + "\n")
        self._append("".join(texts))

    def epoch(self, record, history):
        if not self.enabled:
            return
        line = epoch_line(record)
        print(line, flush=True)
        self._append(line + "\n")
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in history))

    def message(self, text):
        if self.enabled:
            print(text, flush=True)
            self._append(f"# {text}\n")

    def progress(self, total, desc):
        if not (self.enabled and sys.stderr.isatty()):
            return _NoBar()
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True, file=sys.stderr)
