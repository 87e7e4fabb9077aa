"""Inference with an exported MindIR: accuracy on a test split, or the top classes of image files."""
import contextlib
import os
import sys
import tempfile

import mindspore as ms
import numpy as np
from mindspore import nn
from PIL import Image, UnidentifiedImageError

from ..data import dataset_info, load_class_names
from ..errors import UserError
from ..storage.user_paths import join


@contextlib.contextmanager
def _native_stderr_held():
    """Hold back what native code writes to stderr inside the block and replay it only if the block
    succeeds: MindSpore's C++ loader logs an ``[ERROR]`` line of its own before it raises, and a bad
    file is reported as one line of ours instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        os.write(2, held.read())


class MindIRModel:
    """A MindIR graph (from export.py) as a function: float32 NCHW batch -> logits (NumPy)."""

    def __init__(self, path):
        if not os.path.isfile(path):
            raise UserError(f"--mindir {path}: no such file")
        if not path.endswith(".mindir"):
            raise UserError(f"--mindir {path}: expected a .mindir file (export.py writes *_mindir.mindir)")
        try:
            with _native_stderr_held():
                self.graph = nn.GraphCell(ms.load(path))
        except (RuntimeError, ValueError, TypeError) as err:
            raise UserError(f"--mindir {path}: not a readable MindIR model "
                            f"({str(err).strip().splitlines()[0]})") from None
        self.path = path

    def __call__(self, images):
        """``images``: a float32 NCHW batch (NumPy); returns the logits (NumPy)."""
        try:
            return self.graph(ms.Tensor(images)).asnumpy()
        except (RuntimeError, ValueError, TypeError) as err:
            raise UserError(f"--mindir {self.path}: the model does not take a float32 batch of shape "
                            f"{list(images.shape)} ({str(err).strip().splitlines()[0]})") from None


def read_images(paths, normalizer):
    """Image files (anything pillow reads) as one normalised float32 batch: RGB, resized to 32x32."""
    batch = []
    for path in paths:
        try:
            with Image.open(path) as img:
                pixels = np.asarray(img.convert("RGB").resize((32, 32), Image.BILINEAR), np.uint8)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            raise UserError(f"--images {path}: not a readable image ({err})") from None
        batch.append(pixels.transpose(2, 0, 1))          # HWC -> CHW, as the training data
    return normalizer(np.stack(batch))


def class_names(data_dir, dataset):
    """The dataset's class names from its ``meta`` file in ``data_dir`` (or its extracted folder),
    or None if there is none: predictions are then shown as class indices."""
    info = dataset_info(dataset)
    for folder in (join(data_dir, info.folder), data_dir):
        if os.path.isfile(join(folder, info.meta_file)):
            return load_class_names(folder, dataset)
    return None


def top_classes(logits, k):
    """Per row, the ``k`` most probable classes as (index, softmax probability), best first."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    order = np.argsort(-probs, axis=1)[:, :k]
    return [[(int(c), float(p[c])) for c in row] for row, p in zip(order, probs)]


def label(index, names):
    return names[index] if names and index < len(names) else str(index)
