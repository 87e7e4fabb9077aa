"""How a teacher's soft targets look under TS and ATS: the wrong-class statistics of the paper.

Pure NumPy on stored logits, so one forward pass serves every temperature. For each sample,
``p = softmax(z / tau)`` with ``tau = tp_tau`` on the correct class and ``t_tau`` on the others
(TS: ``tp_tau == t_tau``); ``q`` is ``p`` without the correct class, not renormalised. Then

    e(q)     = mean_{c != y} p_c          (derived average)
    sigma(q) = std_{c != y} p_c           (derived spread, population std)

each averaged over the samples. A large teacher under TS has a small sigma(q): its wrong classes
look alike. ATS raises the correct class's temperature only, which keeps them apart.
"""
import numpy as np

# The grid of the authors' analysis script: 0.05, 0.1, 0.25, 0.4, then 0.5 to 10 in steps of 0.5.
AUTHORS_TAUS = (0.05, 0.1, 0.25, 0.4) + tuple(0.5 * k for k in range(1, 21))

# ATS as the authors plot it against one temperature tau: tp_tau = 1.25 tau, t_tau = 0.75 tau.
ATS_FACTORS = (1.25, 0.75)

STAT_KEYS = ("e_q", "sigma_q", "p_correct", "entropy")


def scheme_taus(scheme, tau, ats_factors=ATS_FACTORS):
    """(tp_tau, t_tau) of ``scheme`` ("TS" or "ATS") at the base temperature ``tau``."""
    if scheme == "TS":
        return tau, tau
    return ats_factors[0] * tau, ats_factors[1] * tau


def log_softmax_asym(logits, labels, tp_tau, t_tau):
    """Row-wise log-softmax of ``logits / tau``; ``tau`` is ``tp_tau`` on each row's label, else ``t_tau``."""
    z = np.asarray(logits, np.float64)
    correct = np.arange(z.shape[1])[None, :] == np.asarray(labels)[:, None]
    scaled = z / np.where(correct, tp_tau, t_tau)
    scaled -= scaled.max(axis=1, keepdims=True)       # exp never overflows; the result is unchanged
    return scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))


def per_sample_stats(logits, labels, tp_tau, t_tau):
    """Per-sample e(q), sigma(q), correct-class probability and entropy (nats) of p, as arrays."""
    labels = np.asarray(labels)
    log_p = log_softmax_asym(logits, labels, tp_tau, t_tau)
    p = np.exp(log_p)
    n, c = p.shape
    wrong = np.arange(c)[None, :] != labels[:, None]
    p_correct = p[np.arange(n), labels]
    e_q = (1.0 - p_correct) / (c - 1)               # the wrong classes hold what the correct one does not
    sigma_q = np.sqrt((((p - e_q[:, None]) * wrong) ** 2).sum(axis=1) / (c - 1))
    entropy = -(p * log_p).sum(axis=1)
    return {"e_q": e_q, "sigma_q": sigma_q, "p_correct": p_correct, "entropy": entropy}


def wrong_class_stats(logits, labels, tp_tau, t_tau, chunk=8192):
    """Sample means of ``per_sample_stats``, computed in chunks of rows to bound the memory."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    sums = dict.fromkeys(STAT_KEYS, 0.0)
    for start in range(0, len(labels), chunk):
        part = per_sample_stats(logits[start:start + chunk], labels[start:start + chunk], tp_tau, t_tau)
        for k in STAT_KEYS:
            sums[k] += float(part[k].sum())
    return {k: v / len(labels) for k, v in sums.items()}


def accuracy(logits, labels):
    """Top-1 accuracy of the logits (temperature does not change the argmax of plain TS)."""
    return float((np.asarray(logits).argmax(axis=1) == np.asarray(labels)).mean())


def temperature_table(logits, labels, taus, ats_factors=ATS_FACTORS, teacher="teacher"):
    """Rows (dicts) of the statistics for every temperature, under TS and under ATS."""
    acc = accuracy(logits, labels)
    rows = []
    for scheme in ("TS", "ATS"):
        for tau in taus:
            tp, t = scheme_taus(scheme, tau, ats_factors)
            rows.append({"teacher": teacher, "scheme": scheme, "tau": float(tau), "tp_tau": tp,
                         "t_tau": t, **wrong_class_stats(logits, labels, tp, t), "accuracy": acc,
                         "n_samples": int(len(labels)), "n_classes": int(np.shape(logits)[1])})
    return rows


def collect_logits(forward, loader, with_views=False):
    """Logits (float32 N x C) and labels of every batch of ``loader`` (in order), from ``forward``
    (NumPy batch -> NumPy logits, as every teacher; ``with_views``: it also takes the batch's
    ``BatchViews``, as a cached teacher)."""
    logits, labels = [], []
    for x, y, *views in loader.epoch(with_views=with_views):
        logits.append(forward(x, *views))
        labels.append(y)
    return np.concatenate(logits), np.concatenate(labels)
