"""scikit-learn's callback protocol (`sklearn.callback`, scikit-learn 1.9 and later) for
fastmlp's estimators.

`CallbackSupport` gives an estimator ``set_callbacks`` (scikit-learn's
`CallbackSupportMixin`; on an older scikit-learn, ``set_callbacks`` raises an ImportError
that says so). `FitTask` is what a fit tells the callbacks: the fit is the root task and
each epoch (each iteration of a full-batch solver) one subtask, whose end hands the
callbacks the weights of that moment (``fitted_estimator`` is a copy of the estimator
with them, as scikit-learn's own estimators do). A callback that asks to stop ends the
training after that epoch. Inside a Pipeline or a search, scikit-learn propagates its
context to the estimator, and the estimator's task tree hangs below the meta-estimator's.
"""
from __future__ import annotations

import sklearn

try:
    from sklearn.callback import CallbackSupportMixin as _SkCallbackSupport
except ImportError:  # scikit-learn < 1.9
    _SkCallbackSupport = None

AVAILABLE = _SkCallbackSupport is not None


if AVAILABLE:
    class CallbackSupport(_SkCallbackSupport):
        """scikit-learn's CallbackSupportMixin."""
else:
    class CallbackSupport:
        """set_callbacks, which needs scikit-learn's callback API (1.9 and later)."""

        def set_callbacks(self, *callbacks):
            """Set callbacks for the estimator (needs scikit-learn 1.9 or later)."""
            raise ImportError(
                f"callbacks need scikit-learn 1.9 or later (sklearn.callback); this is "
                f"scikit-learn {sklearn.__version__}: upgrade it to use set_callbacks")


class FitTask:
    """The callbacks' view of one call to fit or partial_fit on (X, y): the root task
    (begun here), one subtask per epoch (`begin_epoch`, `end_epoch`) and the root's end
    (`end`). Without sklearn.callback every method does nothing; without callbacks set,
    only the root task exists (so that a meta-estimator's task tree is still joined).
    `active` says whether there are callbacks to tell about each epoch: the training loops
    then run one epoch per call into the kernels."""

    def __init__(self, estimator, X, y, sample_weight, max_subtasks):
        self.estimator = estimator
        self.X, self.y = X, y
        self.metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        self.root = self.epoch = None
        if AVAILABLE:
            self.root = estimator._init_callback_context(max_subtasks=max_subtasks)
            self.root.call_on_fit_task_begin(estimator=estimator, X=X, y=y,
                                             metadata=self.metadata)
        self.active = self.root is not None and bool(getattr(estimator, "_skl_callbacks",
                                                             None))

    def _hooks(self, weights):
        return dict(estimator=self.estimator, X=self.X, y=self.y, metadata=self.metadata,
                    reconstruction_attributes=lambda: {
                        "coefs_": [c.copy() for c in weights[0]],
                        "intercepts_": [b.copy() for b in weights[1]]})

    def begin_epoch(self, coefs, intercepts, name="epoch"):
        """An epoch starts from the weights (coefs, intercepts)."""
        if self.active:
            self.epoch = self.root.subcontext(task_name=name)
            self.epoch.call_on_fit_task_begin(**self._hooks((coefs, intercepts)))

    def end_epoch(self, coefs, intercepts):
        """The epoch ended with the weights (coefs, intercepts); True when a callback
        asks to stop."""
        if not self.active:
            return False
        epoch, self.epoch = self.epoch, None
        return bool(epoch.call_on_fit_task_end(**self._hooks((coefs, intercepts))))

    def abandon_epoch(self):
        """The epoch begun did not run (training stopped): end it as an empty task, so
        that every begin has its end (as scikit-learn's L-BFGS bridge does)."""
        if self.epoch is not None:
            epoch, self.epoch = self.epoch, None
            epoch.call_on_fit_task_end(estimator=self.estimator)

    def end(self):
        """The fit ended: the estimator is fitted."""
        if self.root is not None:
            self.root.call_on_fit_task_end(estimator=self.estimator, X=self.X, y=self.y,
                                           metadata=self.metadata,
                                           reconstruction_attributes={})


class IterationBridge:
    """scipy.optimize.minimize's callback as the callbacks' subtasks, as scikit-learn's
    LogisticRegression bridges its L-BFGS: the first iteration begins here, at x0; each
    call ends the iteration scipy finished (at xk) and begins the next; `close` ends the
    last one begun, which never ran, as an empty task. When a callback asks to stop, the
    call raises StopIteration, which scipy's minimize honours. unflatten(x) gives the
    (coefs, intercepts) of a flat parameter vector."""

    def __init__(self, task, unflatten, x0, name):
        self.task, self.unflatten, self.name = task, unflatten, name
        task.begin_epoch(*unflatten(x0), name)

    def __call__(self, xk):
        stop = self.task.end_epoch(*self.unflatten(xk))
        self.task.begin_epoch(*self.unflatten(xk), self.name)
        if stop:
            raise StopIteration

    def close(self):
        self.task.abandon_epoch()
