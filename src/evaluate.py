"""Accuracy over every image of a split, for any forward function returning logits."""
import numpy as np


def evaluate(forward, loader, topk=(1,), with_views=False):
    """Top-k accuracies (fractions) over all images of ``loader``: each image counts once.

    ``forward`` maps a float32 NCHW batch (NumPy) to logits (a MindSpore Tensor or NumPy array);
    ``with_views``: it also takes the batch's ``BatchViews`` (a cached teacher).
    """
    import mindspore as ms
    correct = np.zeros(len(topk))
    total = 0
    for x, y, *views in loader.epoch(with_views=with_views):
        logits = forward(x, *views) if with_views else forward(ms.Tensor(x))
        logits = logits.asnumpy() if hasattr(logits, "asnumpy") else np.asarray(logits)
        ranked = np.argsort(-logits, axis=1)
        for i, k in enumerate(topk):
            correct[i] += (ranked[:, :k] == y[:, None]).any(axis=1).sum()
        total += len(y)
    return [float(c / max(total, 1)) for c in correct]
