"""scikit-learn's callback protocol (sklearn.callback) on the drop-ins and Network: one
subtask per epoch (per iteration for rprop), the numbers of a fit unchanged by
callbacks, stopping on a callback's request, Pipeline and GridSearchCV, a clear error
without sklearn.callback; and validation_loss_curve_ with early stopping."""
import importlib
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler

import fastmlp
from fastmlp import MLPClassifier, MLPRegressor, Network, _callbacks

callback = pytest.importorskip(
    "sklearn.callback", reason="scikit-learn's callback API is new in 1.9")

X, y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


class Recorder:
    """Records each task's end; asks to stop after `stop_after` epochs when given."""

    def __init__(self, stop_after=None):
        self.ends, self.stop_after = [], stop_after

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        score = None if fitted_estimator is None else fitted_estimator.score(X, y)
        self.ends.append((context.task_name, score))
        epochs = sum(name != "fit" for name, _ in self.ends)
        return self.stop_after is not None and epochs >= self.stop_after


def same_fit(a, b):
    assert a.n_iter_ == b.n_iter_ and getattr(a, "loss_", 0) == getattr(b, "loss_", 0)
    assert getattr(a, "loss_curve_", None) == getattr(b, "loss_curve_", None)
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(u, v)


MODELS = {
    "sgd": lambda: MLPClassifier(solver="sgd", hidden_layer_sizes=(8,), max_iter=40,
                                 tol=1e-3, learning_rate_init=0.05, random_state=0),
    "adam-early-stopping": lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=15,
                                                 early_stopping=True, random_state=0),
    "rprop": lambda: MLPRegressor(solver="rprop", hidden_layer_sizes=(8,), max_iter=15,
                                  random_state=0),
    "lbfgs": lambda: MLPClassifier(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=15,
                                   random_state=0),
    "network": lambda: Network([4, 8, 3], epochs=12, random_state=0),
    "network-rprop": lambda: Network([4, 8, 3], solver="rprop", epochs=12, random_state=0),
}


@pytest.mark.parametrize("name", MODELS)
def test_one_subtask_per_epoch_and_the_same_numbers(name):
    target = y.astype(float) if name == "rprop" else y
    plain = MODELS[name]().fit(X, target)
    recorder = Recorder()
    told = MODELS[name]().set_callbacks(recorder).fit(X, target)
    same_fit(told, plain)
    epoch = {"rprop": "rprop-iter", "network-rprop": "rprop-iter",
             "lbfgs": "lbfgs-iter"}.get(name, "epoch")
    if name == "lbfgs":  # the iteration scipy's last callback began never runs
        assert recorder.ends.pop(-2) == ("lbfgs-iter", None)
    names = [task for task, _ in recorder.ends]
    assert names[:-1] == [epoch] * told.n_iter_ and names[-1] == "fit"
    if "early" not in name:  # the last epoch's weights are the fitted ones
        assert recorder.ends[-2][1] == recorder.ends[-1][1] == told.score(X, target)
    assert len({score for _, score in recorder.ends}) > 1  # each epoch's own weights


@pytest.mark.parametrize("name", ["sgd", "rprop", "lbfgs", "network", "network-rprop"])
def test_a_callback_stops_the_fit(name):
    target = y.astype(float) if name == "rprop" else y
    model = MODELS[name]().set_callbacks(Recorder(stop_after=3)).fit(X, target)
    assert model.n_iter_ == 3 and len(getattr(model, "loss_curve_", "123")) == 3


def test_partial_fit_is_one_subtask():
    recorder = Recorder()
    model = Network([4, 8, 3], random_state=0).set_callbacks(recorder)
    model.partial_fit(X, y, classes=[0, 1, 2])
    MLPClassifier(hidden_layer_sizes=(8,)).set_callbacks(recorder).partial_fit(
        X, y, classes=[0, 1, 2])
    assert [task for task, _ in recorder.ends] == ["epoch", "fit"] * 2


def test_scoring_monitor_in_pipeline_and_grid_search():
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    monitor = callback.ScoringMonitor(scoring="accuracy")
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, random_state=0)
    make_pipeline(StandardScaler(), model.set_callbacks(monitor)).fit(X, y)
    search = GridSearchCV(Network([4, 8, 3], epochs=3, random_state=0),
                          {"alpha": [0.0, 0.1]}, cv=2)
    search.estimator.set_callbacks(monitor)
    search.fit(X, y)
    logs = monitor.get_logs(select="all")  # a run per outermost fit
    assert [log.estimator_name for log in logs] == ["Pipeline", "GridSearchCV"]
    rows = [row for log in logs for row in log.data]
    # 4 epochs in the pipeline; 3 in each of the search's 2 x 2 fits and its refit
    assert sum(row["task_name"] == "epoch" for row in rows) == 4 + (2 * 2 + 1) * 3
    assert all(0 <= row["accuracy"] <= 1 for row in rows)


def test_progress_bar_propagates_from_meta_estimators(capsys):
    pytest.importorskip("rich", reason="scikit-learn's ProgressBar needs rich")
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(8,), max_iter=3,
                                        random_state=0), {"alpha": [1e-4, 1e-2]}, cv=2)
    search.set_callbacks(callback.ProgressBar()).fit(X, y)
    assert search.best_estimator_.n_iter_ == 3


def test_without_sklearn_callback_set_callbacks_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.callback", None)  # an import that fails
    try:
        old = importlib.reload(_callbacks)
        assert not old.AVAILABLE
        with pytest.raises(ImportError, match="callbacks need scikit-learn 1.9 or later"):
            old.CallbackSupport().set_callbacks(Recorder())
        task = old.FitTask(Network([4, 3]), X, y, None, 3)  # a fit without callbacks
        assert not task.active and task.end_epoch([], []) is False
    finally:
        monkeypatch.undo()
        importlib.reload(_callbacks)
    assert _callbacks.AVAILABLE


def test_validation_loss_curve(monkeypatch):
    """The loss of each epoch's weights on the validation rows, without the L2 term."""
    from fastmlp import _multilayer_perceptron as mlp

    splits, original = [], mlp.train_test_split

    def recording_split(*arrays, **kwargs):
        splits.append(original(*arrays, **kwargs))
        return splits[-1]

    monkeypatch.setattr(mlp, "train_test_split", recording_split)
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, early_stopping=True,
                          alpha=1.0, validation_fraction=0.3, random_state=0).fit(X, y)
    X_val, y_val = splits[0][1], model.classes_[splits[0][3].argmax(axis=1)]
    assert len(model.validation_loss_curve_) == len(model.validation_scores_) == 1
    np.testing.assert_allclose(model.validation_loss_curve_[0],
                               log_loss(y_val, model.predict_proba(X_val)), rtol=1e-10)
    # a regressor's: half the mean squared error, as scikit-learn's training loss
    targets = np.c_[X[:, 0], X[:, 1] * 2]
    regressor = MLPRegressor(hidden_layer_sizes=(8,), max_iter=1, early_stopping=True,
                             alpha=1.0, random_state=0).fit(X, targets)
    X_val, y_val = splits[1][1], splits[1][3]
    np.testing.assert_allclose(regressor.validation_loss_curve_[0],
                               ((y_val - regressor.predict(X_val)) ** 2).mean() / 2,
                               rtol=1e-10)
    longer = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, early_stopping=True,
                           random_state=0).fit(X, y)
    assert len(longer.validation_loss_curve_) == longer.n_iter_
    assert longer.validation_loss_curve_[-1] < longer.validation_loss_curve_[0]
    assert MLPClassifier(max_iter=2).fit(X, y).validation_loss_curve_ is None


def test_warm_start_of_a_model_without_a_validation_loss_curve():
    """A model saved or pickled by an earlier fastmlp has no validation_loss_curve_."""
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, early_stopping=True,
                          warm_start=True, random_state=0).fit(X, y)
    del model.validation_loss_curve_
    model.fit(X, y)
    assert len(model.validation_loss_curve_) == 3
