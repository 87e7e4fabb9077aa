"""The verdicts of benchmarks/parity_torch.py: is the package as close to PyTorch's float64 training as
PyTorch's own float32 training is, and is its ``--scheduler step`` the authors' schedule?"""
import numpy as np

from parity_task import EPOCHS, WARMUP_EPOCHS

# float32's machine epsilon: a distance below it is one rounding's luck, so no ratio is taken against less.
FLOOR = 2.0 ** -23
# A schedule holds float32 rates: equal means within a few of float32's roundings.
SCHEDULE_TOLERANCE = 1e-6
# quantity in a summary's steps -> its name in a message
PER_STEP = {"param": "parameter error", "loss": "loss error"}


def _worst_ratio(ours, theirs):
    """(ratio, step) where the package's largest error so far is furthest above PyTorch float32's
    largest so far. Errors so far, not at the step: one step's error can be small by luck (a loss
    error of 1e-8 one step, 1e-6 the next), a bad setting's stays large."""
    ratios = np.maximum.accumulate(ours) / np.maximum(np.maximum.accumulate(theirs), FLOOR)
    return float(ratios.max()), int(ratios.argmax()) + 1


def judge(summary, multiple):
    """One row of the table for a package run (parity_package.train_against's summary) and its
    mismatches: a step at which the package's parameter or loss error so far exceeds ``multiple``
    times PyTorch float32's (or ``FLOOR``), or final BatchNorm running statistics that do."""
    steps = summary["steps"]
    row = {"net": summary["net"], "engine": summary["engine"], "steps": len(steps),
           "perturb": summary["perturb"],
           "param_err": steps[-1]["param_err"], "torch32_param_err": steps[-1]["torch32_param_err"],
           "loss_err": max(s["loss_err"] for s in steps),
           "torch32_loss_err": max(s["torch32_loss_err"] for s in steps),
           "bn_err": summary["bn_err"], "torch32_bn_err": summary["torch32_bn_err"]}
    mismatches = []
    for name, what in PER_STEP.items():
        ratio, step = _worst_ratio([s[f"{name}_err"] for s in steps],
                                   [s[f"torch32_{name}_err"] for s in steps])
        row.update({f"{name}_ratio": ratio, f"{name}_worst_step": step})
        if ratio > multiple:
            mismatches.append(f"{summary['net']} {summary['engine']}: by step {step} its {what} is "
                              f"{ratio:.3g} x PyTorch float32's (allowed: {multiple:g} x)")
    row["bn_ratio"] = summary["bn_err"] / max(summary["torch32_bn_err"], FLOOR)
    if row["bn_ratio"] > multiple:
        mismatches.append(f"{summary['net']} {summary['engine']}: its BatchNorm running statistics' error "
                          f"{summary['bn_err']:.3g} is {row['bn_ratio']:.3g} x PyTorch float32's "
                          f"{summary['torch32_bn_err']:.3g} (allowed: {multiple:g} x)")
    row["ok"] = not mismatches
    return row, mismatches


def _max_relative(ours, ref, where=slice(None)):
    return float(np.max(np.abs(ours[where] - ref[where]) / ref[where]))


def compare_schedules(record, settings):
    """The package's ``--scheduler step`` over the whole 240-epoch run, per step, against the recipe
    per step and against the authors' code (which sets the rate once per epoch). Returns the
    measures and the mismatches: any difference from the recipe, or from the authors' code after
    their warm-up. In the warm-up the two differ by design: reported, not judged."""
    from src.training.schedules import build_schedule

    per_epoch = settings["schedule_steps_per_epoch"]
    ours = build_schedule("step", settings["lr"], EPOCHS, per_epoch).astype(np.float64)
    recipe, authors = record["schedule_recipe"], record["schedule_authors"]
    after_warmup = slice(WARMUP_EPOCHS * per_epoch, None)
    result = {"epochs": EPOCHS, "steps_per_epoch": per_epoch,
              "recipe_max_relative": _max_relative(ours, recipe),
              "authors_after_warmup_max_relative": _max_relative(ours, authors, after_warmup),
              "authors_warmup_max_difference_over_lr":
                  float(np.max(np.abs(ours - authors)[:after_warmup.start])) / settings["lr"]}
    mismatches = [f"schedule: the package's --scheduler step is {result[key]:.3g} (relative) from {what}"
                  for key, what in (("recipe_max_relative", "the recipe's per-step schedule"),
                                    ("authors_after_warmup_max_relative",
                                     f"the authors' code after epoch {WARMUP_EPOCHS}"))
                  if result[key] > SCHEDULE_TOLERANCE]
    result["ok"] = not mismatches
    return result, mismatches
