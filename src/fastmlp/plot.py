"""Pictures of training, with matplotlib (the optional extra ``fastmlp[plot]``)."""
from __future__ import annotations

import numpy as np


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "fastmlp.plot needs matplotlib; install it with `pip install 'fastmlp[plot]'` "
            "(or `pip install matplotlib`)"
        ) from exc
    return plt


def loss_curve(model, ax=None):
    """Draw the training loss per epoch and, when recorded, the validation loss and score.

    Parameters
    ----------
    model : fitted estimator
        A model with a ``loss_curve_`` attribute (``Network``, ``MLPClassifier`` or
        ``MLPRegressor`` trained by 'sgd', 'adam' or 'rprop'). When
        ``validation_loss_curve_`` is a non-empty list (``early_stopping=True``), it is
        drawn beside the training loss; ``validation_scores_`` against a second y axis
        on the right.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None draws on a new figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes of the loss curve (``ax.figure.savefig("curve.png")`` saves it).
    """
    loss = getattr(model, "loss_curve_", None)
    if loss is None or len(loss) == 0:
        raise ValueError(
            f"{type(model).__name__} has no loss curve: fit it first with solver "
            f"'sgd', 'adam' or 'rprop' (lbfgs does not record one)"
        )
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    style = dict(marker="o", markersize=3) if len(loss) <= 50 else {}
    epochs = np.arange(1, len(loss) + 1)
    loss_name = getattr(model, "loss", None)
    if loss_name == "auto":  # Network: the loss its output unit implies
        from .network import AUTO_LOSS

        loss_name = AUTO_LOSS.get(getattr(model, "output", None))
    label = f"training loss ({loss_name})" if isinstance(loss_name, str) else "training loss"
    lines = ax.plot(epochs, loss, color="C0", label=label, **style)
    validation_loss = getattr(model, "validation_loss_curve_", None)
    if validation_loss is not None and len(validation_loss) > 0:
        lines += ax.plot(epochs[: len(validation_loss)], validation_loss, color="C2",
                         label="validation loss (no L2 term)", **style)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_ylabel(label, color="C0")
    ax.set_title(f"{type(model).__name__}: training curve")
    ax.grid(True, alpha=0.3)

    scores = getattr(model, "validation_scores_", None)
    legend_at = "best"
    if scores is not None and len(scores) > 0:
        right = ax.twinx()
        kind = "accuracy" if hasattr(model, "classes_") else "R²"
        right_label = f"validation score ({kind})"
        lines += right.plot(epochs[: len(scores)], scores, color="C1", linestyle="--",
                            label=right_label, **style)
        best = int(np.argmax(scores))
        lines += right.plot(epochs[best], scores[best], "*", color="C1", markersize=11,
                            label=f"best validation score {scores[best]:.4g}, epoch {best + 1}")
        right.set_ylabel(right_label, color="C1")
        # The loss falls while the score rises: the middle of the right side stays free
        # ("best" would only look at the loss's axes).
        legend_at = "center right"
    ax.legend(handles=lines, loc=legend_at)
    return ax
