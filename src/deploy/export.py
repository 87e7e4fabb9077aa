"""Export a trained network for inference: MindIR (or ONNX) with a batch dimension of any size."""
import os
import re

import mindspore as ms

from ..errors import UserError
from ..kernels.engine import mindspore_layers
from ..nets.models import build_network
from ..storage.checkpoint import load_into
from ..storage.files import written_atomically
from ..storage.run_files import EXPORT_SUFFIXES, OPTIMIZER_ENTRIES

INPUT_SHAPE = (3, 32, 32)   # one CIFAR image, channels first; the batch dimension is left open

# MindSpore's exporters refuse any other character in a file name (a space, for one).
_EXPORTABLE_NAME = re.compile(r"[0-9a-zA-Z@_\-.:/\\]+")


def load_trained(net, n_layer, n_classes, width, ckpt):
    """The network with the checkpoint's parameters (names and shapes checked), in eval mode, built
    with MindSpore's own convolutions (what MindIR and ONNX files hold)."""
    with mindspore_layers():
        model = build_network(net, n_layer, n_classes, width)
    # A *-last.ckpt training state holds the optimizer's entries beside the network's: skipped.
    load_into(model, ckpt, "checkpoint", extra_ok=OPTIMIZER_ENTRIES)
    model.set_train(False)
    return model


def _exportable_name(path):
    """``path`` as MindSpore's exporters accept it; relative to the working directory it often avoids
    a space higher up (``C:/Users/First Last/...``)."""
    candidates = [path]
    try:
        candidates.append(os.path.relpath(path))
    except ValueError:   # Windows: on another drive than the working directory
        pass
    for name in candidates:
        if _EXPORTABLE_NAME.fullmatch(name):
            return name
    raise UserError(f"{path}: MindSpore exports only to paths made of letters, digits and @ _ - . : / \\ "
                    f"(no spaces); choose another --ckpt_dir or run from a folder nearer to it")


def export_network(net, path, file_format="MINDIR", before_replacing=None):
    """Write ``net`` (in eval mode) to ``path`` as MindIR or ONNX, input ``[N, 3, 32, 32]`` float32
    for any N. The file appears only when complete: an existing ``path`` survives a failed export,
    and is handed to ``before_replacing`` (if given) when a new one replaces it."""
    folder = os.path.dirname(os.path.abspath(path))
    # The temporary name already ends with the format's extension, so MindSpore appends none.
    extension = EXPORT_SUFFIXES[file_format].rsplit(".", 1)[1]
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp.{extension}")
    images = ms.Tensor(shape=[None, *INPUT_SHAPE], dtype=ms.float32)
    net.set_train(False)
    name = _exportable_name(tmp)
    try:
        # Replacing also works on Windows, where MindSpore's MindIR files are read-only.
        with written_atomically(path, tmp, before_replacing):
            if file_format == "MINDIR":
                ms.export(net, images, file_name=name, file_format="MINDIR")
            else:
                ms.onnx.export(net, images, file_name=name, input_names=["images"], output_names=["logits"])
            if not os.path.isfile(tmp):
                # ms.onnx.export logs a failed write instead of raising.
                raise UserError(f"{path}: MindSpore could not write the {file_format} file")
    except OSError as err:
        raise UserError(f"{path}: cannot write it ({err.strerror or err})") from None
