"""Accuracy over every image of a split, for any forward function from NumPy images to NumPy logits."""
import numpy as np


def cell_forward(cell):
    """A network (``nn.Cell``) as a forward function: float32 NCHW batch (NumPy) -> logits (NumPy)."""
    import mindspore as ms
    return lambda images: cell(ms.Tensor(images)).asnumpy()


def evaluate(forward, loader, topk=(1,), with_views=False):
    """Top-k accuracies (fractions) over all images of ``loader``: each image counts once.

    ``forward`` maps a float32 NCHW batch (NumPy) to logits (NumPy): a teacher, a MindIR model, or
    a network through ``cell_forward``; ``with_views``: it also takes the batch's ``BatchViews``
    (a cached teacher).
    """
    correct = np.zeros(len(topk))
    total = 0
    for x, y, *views in loader.epoch(with_views=with_views):
        ranked = np.argsort(-forward(x, *views), axis=1)
        for i, k in enumerate(topk):
            correct[i] += (ranked[:, :k] == y[:, None]).any(axis=1).sum()
        total += len(y)
    return [float(c / max(total, 1)) for c in correct]
