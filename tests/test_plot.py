"""fastmlp.plot.loss_curve, drawn with matplotlib's Agg backend."""
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib (fastmlp[plot]) missing")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fastmlp import MLPClassifier, MLPRegressor, Network, plot  # noqa: E402


class Fitted:
    """Stands for a fitted model: only the attributes loss_curve reads."""

    def __init__(self, **attributes):
        self.__dict__.update(attributes)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_training_curve_only():
    loss = [2.0, 1.5, 1.2, 1.1]
    ax = plot.loss_curve(Fitted(loss_curve_=loss, loss="log_loss", validation_scores_=None))
    assert len(ax.figure.axes) == 1
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(line.get_ydata(), loss)
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "training loss (log_loss)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training loss (log_loss)"]


def test_validation_scores_on_twin_axis():
    loss = np.linspace(1, 0.1, 60)
    scores = [0.5, 0.7, 0.9, 0.8] + [0.85] * 56
    model = Fitted(loss_curve_=list(loss), validation_scores_=scores, classes_=[0, 1])
    ax = plot.loss_curve(model)
    left, right = ax.figure.axes
    assert left is ax
    assert right.get_ylabel() == "validation score (accuracy)"
    curve, best = right.get_lines()
    np.testing.assert_array_equal(curve.get_ydata(), scores)
    np.testing.assert_array_equal(best.get_xdata(), [3])
    np.testing.assert_array_equal(best.get_ydata(), [0.9])
    assert curve.get_marker() == "None"  # long curves are drawn without markers
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["training loss", "validation score (accuracy)",
                      "best validation score 0.9, epoch 3"]


def test_regressor_score_is_r2_and_given_axes_are_used():
    _, (first, second) = plt.subplots(1, 2)
    model = Fitted(loss_curve_=[1.0, 0.5], validation_scores_=[0.1, 0.4], loss="squared_error")
    assert plot.loss_curve(model, ax=second) is second
    assert first.get_lines() == [] and len(second.get_lines()) == 1
    twin = second.figure.axes[-1]
    assert twin.get_ylabel() == "validation score (R²)"


def test_saves_png(tmp_path):
    ax = plot.loss_curve(Fitted(loss_curve_=[3.0, 2.0, 1.5]))
    path = tmp_path / "curve.png"
    ax.figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("model, ylabels", [
    (Network([4, 8, 3], epochs=5, random_state=0), ["training loss (log_loss)"]),
    (MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=15, random_state=0),
     ["training loss (log_loss)", "validation score (accuracy)"]),
    (MLPRegressor(hidden_layer_sizes=(8,), early_stopping=True, max_iter=15, random_state=0),
     ["training loss (squared_error)", "validation score (R²)"]),
], ids=["Network", "MLPClassifier", "MLPRegressor"])
def test_fitted_fastmlp_models(model, ylabels):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0) if ylabels[0].endswith("(log_loss)") else X[:, 0]
    model.fit(X, y)
    ax = plot.loss_curve(model)
    assert [a.get_ylabel() for a in ax.figure.axes] == ylabels
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), model.loss_curve_)
    if len(ylabels) == 2:
        np.testing.assert_allclose(ax.figure.axes[1].get_lines()[0].get_ydata(),
                                   model.validation_scores_)


@pytest.mark.parametrize("model", [Fitted(), Fitted(loss_curve_=[])], ids=["unfitted", "empty"])
def test_no_curve_is_a_value_error(model):
    with pytest.raises(ValueError, match="no loss curve"):
        plot.loss_curve(model)


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'fastmlp\[plot\]'"):
        plot.loss_curve(Fitted(loss_curve_=[1.0]))


def test_validation_loss_beside_the_training_loss():
    model = Fitted(loss_curve_=[1.0, 0.6, 0.4], validation_loss_curve_=[1.1, 0.8, 0.7],
                   validation_scores_=[0.5, 0.6, 0.65], classes_=[0, 1], loss="log_loss")
    ax = plot.loss_curve(model)
    training, validation = ax.get_lines()
    np.testing.assert_array_equal(validation.get_ydata(), [1.1, 0.8, 0.7])
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == [
        "training loss (log_loss)", "validation loss (no L2 term)"]
