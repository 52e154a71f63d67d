"""class_weight: each row's weight in the training loss is its sample weight times the
weight of its class, with scikit-learn's meaning (LogisticRegression, SGDClassifier):
None (every class 1), a dict {class label: weight} (classes not named weigh 1), or
"balanced": n_samples / (n_classes * count of the class), the counts weighted by the
sample weights where scikit-learn's `compute_class_weight` takes them (1.8 and later,
as LogisticRegression does). For a multilabel indicator target, each output column is a
problem of its own and the weights of a row multiply (`compute_sample_weight`).
"""
from __future__ import annotations

import inspect

import numpy as np
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

_TAKES_SAMPLE_WEIGHT = "sample_weight" in inspect.signature(compute_class_weight).parameters

PARTIAL_FIT_BALANCED = (
    "class_weight='balanced' is not supported by partial_fit: one batch's class "
    "frequencies are not the data's. Compute the weights once with "
    "sklearn.utils.class_weight.compute_class_weight('balanced', classes=classes, y=y) "
    "on the targets (or a large enough sample of them) and pass the result as a dict: "
    "class_weight=dict(zip(classes, weights))")


def training_weights(class_weight, classes, labels, sample_weight, partial=False):
    """The rows' weights in the training loss: sample_weight (None: all 1) times the
    weight of each row's class. `labels` is each row's class index into `classes` (1-D
    ints), or a 0/1 indicator matrix (multilabel). Returns sample_weight itself when
    class_weight is None; float64 otherwise. partial_fit refuses "balanced" (as
    scikit-learn's SGDClassifier does)."""
    if class_weight is None:
        return sample_weight
    if partial and isinstance(class_weight, str) and class_weight == "balanced":
        raise ValueError(PARTIAL_FIT_BALANCED)
    labels = np.asarray(labels)
    if labels.ndim == 2:
        weights = compute_sample_weight(class_weight, labels)
    else:
        y = np.asarray(classes)[labels]
        extra = ({"sample_weight": sample_weight}
                 if _TAKES_SAMPLE_WEIGHT and sample_weight is not None else {})
        with np.errstate(divide="ignore"):  # a class of weight 0 in total: see below
            per_class = compute_class_weight(class_weight, classes=np.asarray(classes),
                                             y=y, **extra)
        per_class = np.asarray(per_class, dtype=np.float64)
        # "balanced" over a class whose rows all weigh 0 divides by 0: they stay at 0
        weights = np.where(np.isfinite(per_class), per_class, 0.0)[labels]
    return weights if sample_weight is None else weights * np.asarray(sample_weight,
                                                                      np.float64)


def class_index(Y, target_type):
    """Each row's class index from the 0/1 target matrix Y of a classifier (its output
    units' targets): the column of the 1 (multiclass; two columns for two classes), the
    single column itself (binary, one unit); Y itself for a multilabel indicator."""
    Y = np.asarray(Y)
    if target_type == "multilabel-indicator":
        return Y
    if Y.shape[1] == 1:
        return Y[:, 0].astype(np.intp)
    return Y.argmax(axis=1)
