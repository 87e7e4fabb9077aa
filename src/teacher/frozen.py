"""The frozen teacher: a trained network run for inference only, by MindSpore or ONNX Runtime.

Every teacher is a callable with one contract: a float32 NCHW batch (NumPy) in, its logits (float32
NumPy) out; its ``engine`` attribute says what runs it.
"""
import numpy as np

from ..data import dataset_info, normalization_stats
from ..device import usable_cores
from ..errors import UserError
from ..kernels.engine import mindspore_layers
from ..nets.fold_bn import fold_batchnorm
from ..nets.models import build_network
from ..storage.checkpoint import load_into
from ..storage.run_files import OPTIMIZER_ENTRIES
from ..training.evaluate import cell_forward
from .onnx_runtime import TEACHER_ENGINES, OnnxTeacher, OnnxTeacherError, export_onnx_bytes, onnxruntime_available


class Teacher:
    """Eval-mode forward of a trained network in its own MindSpore graph: BatchNorm uses its moving
    statistics and nothing is updated; no gradient is ever taken through it (its logits enter the
    student's loss as inputs)."""

    engine = "mindspore"

    def __init__(self, net):
        self.net = net
        self.net.set_train(False)
        for p in self.net.get_parameters():
            p.requires_grad = False
        self.forward = cell_forward(net)

    def __call__(self, images):
        return self.forward(images)


class Renormalized:
    """A teacher trained on inputs normalised with other statistics than the student's batches.

    Maps each batch ``x`` (normalised with ``data`` mean/std) to ``x * s_d / s_t + (m_d - m_t) / s_t``,
    exactly what normalising the same raw pixels with the ``teacher`` mean/std gives (zero padding
    included, since crops are padded before normalisation).
    """

    def __init__(self, teacher, data, teacher_stats):
        (m_d, s_d), (m_t, s_t) = [(np.asarray(m, np.float32), np.asarray(s, np.float32))
                                  for m, s in (data, teacher_stats)]
        self.teacher = teacher
        self.engine = getattr(teacher, "engine", None)
        self.scale = (s_d / s_t).reshape(1, 3, 1, 1)
        self.shift = ((m_d - m_t) / s_t).reshape(1, 3, 1, 1)

    def __call__(self, images):
        return self.teacher(images * self.scale + self.shift)


def resolve_engine(engine, device_target="CPU"):
    """(engine to use, note for the log or None): ``auto`` is ONNX Runtime on the CPU if installed."""
    if engine not in TEACHER_ENGINES:
        raise UserError(f"--teacher_engine {engine!r}: expected one of {', '.join(TEACHER_ENGINES)}")
    have_ort = onnxruntime_available()
    if engine == "onnxruntime" and not have_ort:
        raise UserError("--teacher_engine onnxruntime: the onnxruntime package is not installed "
                        "(pip install onnxruntime, or use --teacher_engine mindspore)")
    if engine == "auto":
        if device_target != "CPU":
            return "mindspore", None
        if have_ort:
            return "onnxruntime", None
        return "mindspore", ("onnxruntime is not installed: the teacher runs in MindSpore "
                             "(pip install onnxruntime for a faster teacher)")
    return engine, None


def load_teacher(net, n_layer, n_classes, width, ckpt, flag="--t_ckpt", engine="mindspore",
                 fold_bn=True, threads=None, on_onnx_failure=None):
    """Build the teacher network, load ``ckpt`` into it (every parameter name and shape checked)
    and return the teacher (NumPy batch -> NumPy logits, see above) run by ``engine`` (its ``engine``
    attribute says which engine runs it).

    ``onnxruntime`` runs the network's ONNX export (logits equal to MindSpore's within float32
    rounding, see tests/test_teacher_engines.py) with ``threads`` operator threads (default: all);
    if the network cannot be exported or run there, it is a UserError, unless ``on_onnx_failure`` is
    given: then that callable gets a one-line note and the teacher runs in MindSpore.
    ``mindspore`` runs it with its BatchNorm folded into the convolutions unless ``fold_bn`` is False.
    """
    engine, _ = resolve_engine(engine)

    def trained_network():
        model = build_network(net, n_layer, n_classes, width, flag="--t_net")
        # A *-last.ckpt training state also holds optimizer entries: the network part is what counts.
        load_into(model, ckpt, f"teacher checkpoint {flag}", extra_ok=OPTIMIZER_ENTRIES)
        return model

    if engine == "onnxruntime":
        with mindspore_layers():   # exported to ONNX, never run by MindSpore
            model = trained_network()
        try:
            # ONNX Runtime fuses BatchNorm into the convolutions itself.
            return OnnxTeacher(export_onnx_bytes(model), threads=threads)
        except OnnxTeacherError as e:
            if on_onnx_failure is None:
                raise UserError(f"--teacher_engine onnxruntime: {e}; use --teacher_engine mindspore") from e
            on_onnx_failure(f"{e}: the teacher runs in MindSpore")
    model = trained_network()   # on the process's convolution engine
    if fold_bn:
        fold_batchnorm(model)
    return Teacher(model)


def teacher_threads(deterministic, dist):
    """ONNX Runtime operator threads for the teacher (None: every usable core)."""
    if deterministic:
        return 1  # keeps a --deterministic run's teacher logits bit-identical too
    if dist:
        # msrun's processes share the machine's cores (one machine is the CPU case).
        return max(1, usable_cores() // dist.size)
    return None


def frozen_teacher(args, log, dist=None):
    """The teacher of run_distill.py's resolved flags ``args``, on the engine they choose (``log``
    hears which, and why ``auto`` chose it), seeing its inputs normalised as it was trained."""
    engine, note = resolve_engine(args.teacher_engine, args.device_target)
    if note:
        log(note)
    teacher = load_teacher(args.t_net, args.t_n_layer, args.n_classes, args.t_width, args.t_ckpt,
                           engine=engine, threads=teacher_threads(args.deterministic, dist),
                           on_onnx_failure=log if args.teacher_engine == "auto" else None)
    log(f"teacher engine: {teacher.engine}")
    if args.t_input_norm == "dataset":
        return teacher
    info = dataset_info(args.dataset)
    return Renormalized(teacher, normalization_stats(info, "dataset"), normalization_stats(info, args.t_input_norm))
