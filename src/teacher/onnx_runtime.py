"""The frozen teacher run by ONNX Runtime (optional dependency), whose CPU kernels run the teacher's
forward faster than MindSpore's (teacher_r110 in benchmarks/bench.py)."""
import os
import shutil
import tempfile

import numpy as np

from ..device import usable_cores

# What can run the frozen teacher: ``auto`` is ONNX Runtime on the CPU when it is installed.
TEACHER_ENGINES = ("auto", "mindspore", "onnxruntime")


class OnnxTeacherError(RuntimeError):
    """The teacher could not be exported to ONNX or loaded by ONNX Runtime."""


def onnxruntime_available():
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx_bytes(net, n_channels=3, size=32):
    """The eval-mode ``net`` as an ONNX model (bytes) whose batch dimension is free.

    The file is written to a private temporary folder and removed at once: nothing lands next to
    the user's checkpoints.
    """
    import mindspore as ms
    net.set_train(False)
    # An input of unknown batch size leaves the batch dimension free in the input and the output
    # (``dynamic_axes`` would free the input's only).
    images = ms.Tensor(shape=[None, n_channels, size, size], dtype=ms.float32)
    folder = tempfile.mkdtemp(prefix="teacher-onnx-")
    try:
        path = os.path.join(folder, "teacher.onnx")
        try:
            ms.onnx.export(net, images, file_name=path, input_names=["images"], output_names=["logits"])
        except Exception as e:  # whatever the exporter trips on, the caller may fall back to MindSpore
            raise OnnxTeacherError(f"MindSpore could not export the teacher to ONNX ({e})") from e
        if not os.path.isfile(path):
            # ms.onnx.export sometimes logs a failure instead of raising it.
            raise OnnxTeacherError("MindSpore could not export the teacher to ONNX")
        with open(path, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class OnnxTeacher:
    """Maps a float32 NCHW batch (NumPy) to the teacher's logits (NumPy), as every teacher does.

    ``threads`` operator threads (default: every core this process may use). They do not spin
    between calls (``allow_spinning`` 0): the student's step runs right after on the same cores.
    """

    engine = "onnxruntime"

    def __init__(self, model_bytes, threads=None):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or usable_cores()
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # e.g. an operator this onnxruntime version lacks
            raise OnnxTeacherError(f"ONNX Runtime could not load the teacher's ONNX export ({e})") from e

    def __call__(self, images):
        return self.session.run(None, {"images": np.ascontiguousarray(images, np.float32)})[0]
