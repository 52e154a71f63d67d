"""Drop-in replacements for scikit-learn's MLPClassifier and MLPRegressor.

Each class subclasses scikit-learn's own estimator and replaces only the numerical
paths: a stochastic epoch (all its mini-batches) runs in one call to the C kernels
(`_engine.train_epoch`), L-BFGS gets the full-batch loss and gradient from the kernels
(`_engine.loss_and_grad`), and prediction uses the kernels' forward pass
(`_engine.forward`). Parameter validation, label handling, the early-stopping split and
bookkeeping, the learning-rate schedules and every message stay scikit-learn's own, so
that the estimators behave the same and, given the same random_state, compute the same
numbers.
"""
from __future__ import annotations

import sys
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import sklearn
from sklearn import neural_network as _sk
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network._base import LOSS_FUNCTIONS
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data
from threadpoolctl import threadpool_limits

from . import _callbacks, _engine, _kernels, _sklearn_private, _weights

# Hidden activations: the kernels' (scikit-learn's four, and leaky_relu with negative
# slope 0.01), by scikit-learn's names, without the notes' aliases.
_ACTIVATIONS = set(_engine.HIDDEN_ACTIVATIONS) - set(_engine.ALIASES)


def _doc(sk_class):
    """fastmlp's summary followed by scikit-learn's Parameters ... Notes sections."""
    kind = "classifier" if sk_class is _sk.MLPClassifier else "regressor"
    summary = f"""Multi-layer Perceptron {kind} trained by fastmlp's C kernels.

    A drop-in replacement for ``sklearn.neural_network.{sk_class.__name__}``: the same
    parameters, attributes, methods and results (the same numbers for the same
    random_state), with each training epoch, the L-BFGS loss and gradient, and
    prediction computed by the C kernels. Additionally, ``activation`` may be
    ``'leaky_relu'`` (negative slope 0.01), ``solver='lbfgs'`` keeps float32 input
    in float32 (scikit-learn returns float64 weights there), ``activation`` may list one
    activation per hidden layer, and what scikit-learn's MLPs lack, each off by default:
    ``solver='rprop'`` (iRprop-), ``class_weight`` (the classifier), ``set_callbacks``
    (scikit-learn 1.9's callbacks, one subtask per epoch), with early stopping
    ``validation_loss_curve_``, and ``compute_dtype`` (bfloat16 matrix products)."""
    doc = sk_class.__doc__
    doc = doc[doc.index("Parameters\n"):doc.index("References\n")]
    doc = doc.replace("activation : {'identity', 'logistic', 'tanh', 'relu'}",
                      "activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu'} "
                      "or list of them")
    doc = doc.replace("""        Activation function for the hidden layer.""",
                      """        Activation function for the hidden layers: one for all, or a list with one
        per hidden layer (fastmlp; each layer's initial weights then follow its own
        activation, the output layer's the last one).""")
    doc = doc.replace("solver : {'lbfgs', 'sgd', 'adam'}, default='adam'",
                      "solver : {'lbfgs', 'sgd', 'adam', 'rprop'}, default='adam'")
    doc = doc.replace("\n    Attributes\n", (_CLASS_WEIGHT if kind == "classifier" else "")
                      + _EXTRA_PARAMETERS + _COMPUTE_DTYPE_DOC + _DROPOUT_DOC
                      + "\n    Attributes\n", 1)
    doc = doc.replace("\n    See Also\n", _EXTRA_ATTRIBUTES + "\n    See Also\n", 1)
    return summary + "\n\n    " + doc


_DROPOUT_DOC = """
    dropout : float or list of float, default=0.0
        (fastmlp only; solver='sgd' or 'adam') The probability that a hidden unit is
        dropped from a training row (inverted dropout: the kept units are scaled by
        1 / (1 - p), nothing is dropped in prediction), one for every hidden layer or a
        list with one per hidden layer, each in [0, 1). Which units a row drops in an
        epoch is a hash of (a seed drawn from random_state, the samples seen before the
        epoch, the row, the unit): a fit is reproducible and the same for any thread
        count.
"""

_COMPUTE_DTYPE_DOC = """    compute_dtype : {None, 'bfloat16'}, default=None
        (fastmlp only) What the matrix products of training and prediction compute in.
        None: the dtype of X (float32 or float64), as scikit-learn. 'bfloat16': the
        operands of every product (inputs, activations, weights, deltas) are rounded to
        bfloat16 (nearest even) and the products summed in float32; the weights, the
        optimiser's state, the activations, the losses and the updates are float32.
        float64 X is converted to float32, and prediction computes in float32 too.
        Pays on CPUs with AMX-BF16 (Intel Sapphire Rapids and later) or with an
        AVX512_BF16 at twice the float32 rate (AMD Zen 4 and later), for hidden layers of
        a few hundred units or more.
"""

# fastmlp's parameters and attributes, in the numpydoc of scikit-learn's docstrings.
_EXTRA_PARAMETERS = """
    step_init : float, default=0.1
        Only used when solver='rprop' (iRprop-, Igel and Huesken 2000: full batch, one
        step size per weight; each iteration moves every weight by its step against
        the sign of its gradient). The initial step size of every weight.

    eta_plus : float, default=1.2
        Only used when solver='rprop'. The factor (> 1) by which a weight's step grows
        while its gradient keeps its sign.

    eta_minus : float, default=0.5
        Only used when solver='rprop'. The factor (in (0, 1)) by which a weight's step
        shrinks when its gradient changes sign; that gradient is then taken as zero
        (the weight rests for one iteration).

    step_min : float, default=1e-6
        Only used when solver='rprop'. The smallest step size.

    step_max : float, default=50.0
        Only used when solver='rprop'. The largest step size. The defaults are those of
        Riedmiller and Braun (1993), as in FANN and PyTorch (whose initial step is 0.01).
        'rprop' runs at most ``max_iter`` iterations and stops as 'sgd' and 'adam' do
        when the training loss has not improved by ``tol`` for ``n_iter_no_change``
        iterations; ``loss_curve_`` holds the loss at the start of each iteration.
        It ignores ``early_stopping``; as for 'lbfgs', MLPClassifier has no
        ``partial_fit`` and MLPRegressor's runs a whole fit from the current weights.
"""

_CLASS_WEIGHT = """
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes in the training loss, with scikit-learn's meaning (as in
        ``LogisticRegression``): None gives every class weight one; a dict
        ``{class_label: weight}`` weighs the classes it names (the others one);
        'balanced' gives ``n_samples / (n_classes * np.bincount(y))`` (the counts
        weighted by ``sample_weight`` where scikit-learn's ``compute_class_weight``
        takes it). The weight of each row is its class weight times its
        ``sample_weight``. For a multilabel target, each label column weighs its rows
        on its own and the weights multiply (``compute_sample_weight``). With
        ``early_stopping``, the validation score and loss are not class-weighted (as in
        ``SGDClassifier``). ``partial_fit`` takes a dict but refuses 'balanced'
        (one batch's class frequencies are not the data's), as ``SGDClassifier`` does.
"""

_EXTRA_ATTRIBUTES = """
    validation_loss_curve_ : list of float or None
        With ``early_stopping=True`` (solver 'sgd' or 'adam'), the loss on the
        validation rows after each epoch, beside ``validation_scores_``: the same loss
        function as ``loss_curve_`` (weighted by ``sample_weight``) but without the L2
        penalty term (``alpha``), which ``loss_curve_`` includes. None otherwise.
"""


class _FastMLPMixin:
    """The kernel-backed training and forward paths shared by both estimators."""

    _saved_attributes = (
        "coefs_", "intercepts_", "n_features_in_", "feature_names_in_", "n_layers_",
        "n_outputs_", "out_activation_", "n_iter_", "t_", "loss_", "best_loss_",
        "loss_curve_", "validation_scores_", "best_validation_score_",
        "_no_improvement_count", "validation_loss_curve_",
    )

    def save(self, path):
        """Save the fitted estimator to `path` (read it back with `fastmlp.load`).

        Parameters
        ----------
        path : str or os.PathLike
            The file to write.
        """
        from ._io import save

        save(self, path)

    def _after_load(self):
        """Rebuild the private state that `_saved_attributes` does not hold."""
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]

    # ---- what the kernels need besides the arrays ----------------------------------

    def _spec(self):
        return _engine.spec(self.activation, self.out_activation_, self.loss,
                            compute_dtype=self.compute_dtype)

    def _validate_input(self, X, y, incremental, reset):
        """scikit-learn's checks (or, for the common clean input, `_fast_validate_input`,
        which gives the same X, y and state without them); with bfloat16 products,
        float64 X made float32 (the weights then are float32)."""
        checked = self._fast_validate_input(X, y, incremental, reset)
        if checked is None:
            checked = super()._validate_input(X, y, incremental, reset)
        X, y = checked
        if self.compute_dtype is not None and X.dtype != np.float32:
            X = X.astype(np.float32)
        return X, y

    def _clean_fit_input(self, X, y, reset):
        """True when scikit-learn's validate_data, as the drop-ins call it at fit, would
        return X itself, raise nothing and warn of nothing, as far as X tells: a plain
        ndarray, 2-D, float32 or float64 (kept as it is, not copied, in any memory order),
        with rows and columns, finite; under scikit-learn's default configuration (finite
        values checked, NumPy arrays); without reset, the fitted width and no fitted
        feature names (an array without names would be warned about). y: a plain ndarray
        of X's length; its own checks are the estimator's (`_fast_validate_input`)."""
        if type(X) is not np.ndarray or type(y) is not np.ndarray:
            return False
        config = sklearn.get_config()
        if config["assume_finite"] or config["array_api_dispatch"]:
            return False
        if (X.ndim != 2 or X.dtype not in _FAST_DTYPES or 0 in X.shape or y.ndim == 0
                or y.shape[0] != X.shape[0]):
            return False
        if not reset and (hasattr(self, "feature_names_in_")
                          or getattr(self, "n_features_in_", X.shape[1]) != X.shape[1]):
            return False
        return _finite(X)

    def _set_n_features(self, X, reset):
        """validate_data's state for an ndarray X: on reset, its width and no feature
        names."""
        if reset:
            self.__dict__.pop("feature_names_in_", None)
            self.n_features_in_ = X.shape[1]

    def _loss_scale(self):
        # scikit-learn's squared error averages over the outputs; its gradient does not.
        return 1.0 / self.n_outputs_ if self.loss == "squared_error" else 1.0

    def _kernel_params(self, dtype):
        """coefs_ and intercepts_ as C-contiguous arrays of dtype (no copy when they
        already are)."""
        for a in self.coefs_ + self.intercepts_:
            if not (type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous):
                break
        else:
            return self.coefs_, self.intercepts_
        return ([np.require(c, dtype, ["C"]) for c in self.coefs_],
                [np.require(b, dtype, ["C"]) for b in self.intercepts_])

    # ---- training entry ------------------------------------------------------------

    def _init_coef(self, fan_in, fan_out, dtype):
        layers = self.__dict__.get("_init_activations")
        if layers is None:
            return super()._init_coef(fan_in, fan_out, dtype)
        activations, self.activation = self.activation, next(layers)
        try:  # scikit-learn's rule reads self.activation
            return super()._init_coef(fan_in, fan_out, dtype)
        finally:
            self.activation = activations

    # ---- forward -------------------------------------------------------------------

    def _forward_pass_fast(self, X, check_input=True):
        """The output layer's activations on X, shape (n_samples, n_outputs).

        Computed in float32 when both X and the weights are float32 (or smaller),
        otherwise in float64, as NumPy's type promotion in scikit-learn's forward pass.
        """
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        promoted = np.result_type(X.dtype, self.coefs_[0].dtype)
        dtype = (np.float32 if promoted == np.float32 or self.compute_dtype is not None
                 else np.float64)
        coefs, intercepts = self._kernel_params(dtype)
        return _engine.forward(coefs, intercepts, self._spec(), _engine.kernel_X(X, dtype))

    def _fast_forward(self, X):
        """The output layer's activations on X, computed without scikit-learn's checks
        when they would pass X unchanged and without a warning: a fitted model without
        feature names, and a non-empty, C-contiguous, aligned 2-D float32 or float64
        ndarray of the fitted width with finite values (checked by the kernels). None for
        anything else, which then takes scikit-learn's own path (its checks,
        conversions, errors and warnings). Float32 when X and the weights are, float64
        otherwise (NumPy's promotion, as in _forward_pass_fast). On a model fitted with
        feature names, a pandas DataFrame whose columns are those names in their order,
        all of one NumPy float dtype, is taken too (its values, made C-contiguous, are
        what scikit-learn's validation would pass on)."""
        if type(X) is not np.ndarray:
            X = self._named_frame_values(X)
            if X is None:
                return None
        elif hasattr(self, "feature_names_in_"):
            return None  # scikit-learn warns: fitted with names, given none
        if (X.ndim != 2 or X.dtype not in _FAST_DTYPES
                or not (X.flags.c_contiguous and X.flags.aligned) or X.shape[0] == 0
                or X.shape[1] != getattr(self, "n_features_in_", None)
                or not hasattr(self, "coefs_")):
            return None
        dtype = X.dtype if X.dtype == self.coefs_[0].dtype else _FAST_DTYPES[1]
        if self.compute_dtype is not None:  # bfloat16 products: float32
            dtype = _FAST_DTYPES[0]
        coefs, intercepts = self._kernel_params(dtype)
        if coefs is self.coefs_:
            # the weights are used as they are: a Predictor made once serves every call
            return _engine.predictor(self, coefs, intercepts, self._spec())(
                X.astype(dtype, copy=False))
        if not _kernels.all_finite(X):
            return None
        return _engine.forward(coefs, intercepts, self._spec(), X.astype(dtype, copy=False))

    def _named_frame_values(self, X):
        """X's values as a C-contiguous array when X is a pandas DataFrame with exactly
        the fitted feature names (str, in order) and one NumPy float dtype; else None."""
        names = getattr(self, "feature_names_in_", None)
        if (names is None or not type(X).__module__.startswith("pandas")
                or type(X).__name__ != "DataFrame"):
            return None
        columns = list(X.columns)
        if (len(columns) != len(names) or not all(type(c) is str for c in columns)
                or columns != list(names)):
            return None
        dtypes = set(X.dtypes)
        if len(dtypes) != 1 or dtypes.pop() not in _FAST_DTYPES:
            return None
        return np.ascontiguousarray(X.to_numpy())

    # ---- fit: the callbacks' task, and the full-batch solvers scikit-learn lacks --------

    def _fit(self, X, y, sample_weight=None, incremental=False):
        """scikit-learn's _fit (or, for fastmlp's own full-batch solvers, its steps
        before training and `_fit_full_batch`) inside the callbacks' root task; first,
        checks that the private methods the overrides here replace or call are those they
        were written for (an unknown scikit-learn gets one clear error rather than a
        TypeError mid-fit), and that a list of activations has one per hidden layer."""
        _sklearn_private.check()
        if not isinstance(self.activation, str):
            unknown = [a for a in self.activation if a not in _ACTIVATIONS]
            if unknown:
                raise ValueError(f"activation: unknown names {unknown}; expected each of "
                                 f"{sorted(_ACTIVATIONS)}")
            sizes = self.hidden_layer_sizes
            _engine.check_activations(self.activation,
                                      len(sizes) if hasattr(sizes, "__iter__") else 1)
        if self._dropout_rates() is not None and self.solver not in ("sgd", "adam"):
            raise ValueError(f"dropout applies to the stochastic solvers 'sgd' and 'adam', "
                             f"not to solver={self.solver!r}")
        if incremental:
            subtasks = 1
        else:
            subtasks = self.max_iter + (self.solver == "lbfgs")  # scipy's extra call
        self._fit_task = _callbacks.FitTask(self, X, y, sample_weight, subtasks)
        try:
            if self.solver in _engine.FULL_BATCH_OPTIMIZERS:
                self._fit_full_batch(X, y, sample_weight, incremental)
            else:
                super()._fit(X, y, sample_weight=sample_weight, incremental=incremental)
            task = self._fit_task
        finally:
            del self._fit_task
        task.end()
        return self

    def _training_weights(self, y, sample_weight, incremental):
        """The rows' weights in the training loss (class_weight's, see MLPClassifier)."""
        return sample_weight

    def _dropout_rates(self):
        """None (no dropout), or the rate of each hidden layer (ValueError if invalid)."""
        sizes = self.hidden_layer_sizes
        return _engine.dropout_rates(self.dropout,
                                     len(sizes) if hasattr(sizes, "__iter__") else 1)

    def _initialize(self, y, layer_units, dtype):
        # With one activation per hidden layer, scikit-learn's Glorot rule (its bound
        # depends on the activation) is applied layer by layer (_init_coef), the output
        # layer's by the last hidden activation, as scikit-learn takes the hidden one for
        # every layer.
        if not isinstance(self.activation, str):
            self._init_activations = iter(list(self.activation) + [self.activation[-1]])
        try:
            super()._initialize(y, layer_units, dtype)
        finally:
            self.__dict__.pop("_init_activations", None)
        self.validation_loss_curve_ = (
            [] if self.early_stopping and self.solver in ("sgd", "adam") else None)

    def _fit_full_batch(self, X, y, sample_weight, incremental):
        """scikit-learn's _fit before its solvers (validation, labels, the first fit's
        weights), then the solver of FULL_BATCH_OPTIMIZERS over the kernels' loss and
        gradient. incremental: scikit-learn's MLPRegressor.partial_fit, which it offers
        for any solver (for L-BFGS, a whole fit from the current weights)."""
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(
                "hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes
            )
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden_layer_sizes + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        self._fit_rprop(X, y, sample_weight, layer_units)

    def _fit_rprop(self, X, y, sample_weight, layer_units):
        """iRprop- (_engine.IRpropMinus) on the full-batch loss and gradient of the
        kernels, for at most max_iter iterations, with the stopping rule of the
        stochastic solvers on the training loss (tol, n_iter_no_change). The weights
        come back in X's dtype; a fit that diverges raises and keeps the weights it
        started from."""
        dtype = X.dtype
        coefs, intercepts = _engine.check_weights(self.coefs_, self.intercepts_, dtype,
                                                  layer_units)  # warm_start
        params = _engine.FlatParameters(layer_units, dtype)
        grads = _engine.FlatParameters(layer_units, dtype)
        for dst, src in zip(params.coefs + params.intercepts, coefs + intercepts):
            dst[...] = src
        Xk, Y = _engine.kernel_X(X, dtype), np.ascontiguousarray(y, dtype=dtype)
        sw = self._training_weights(y, sample_weight, False)
        sw = None if sw is None else np.ascontiguousarray(sw, dtype=dtype)
        spec, loss_scale = self._spec(), self._loss_scale()
        rprop = _engine.IRpropMinus(params.flat.size, dtype, self.step_init,
                                    self.eta_plus, self.eta_minus, self.step_min,
                                    self.step_max)
        self.loss_curve_, self.best_loss_, self._no_improvement_count = [], np.inf, 0
        self.validation_scores_ = self.best_validation_score_ = None
        task = self._fit_task
        n_iter, stopped = 0, False
        while n_iter < self.max_iter and not stopped:
            task.begin_epoch(params.coefs, params.intercepts, "rprop-iter")
            try:
                loss = _engine.full_batch_iteration(rprop, params, grads, spec, Xk, Y, sw,
                                                    self.alpha, loss_scale)
            except _engine.Diverged as exc:
                raise ValueError(f"Solver diverged in iteration {n_iter + 1}: {exc}") from exc
            n_iter += 1
            self.n_iter_ = n_iter
            self.t_ += Y.shape[0]
            self.loss_ = loss
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            stopped = task.end_epoch(params.coefs, params.intercepts)
            stopped = self._stopping_rule(False, None, None, None, rprop) or stopped
        if not stopped and n_iter == self.max_iter:
            warnings.warn(
                "Rprop: Maximum iterations (%d) reached and the optimization hasn't "
                "converged yet." % self.max_iter, ConvergenceWarning)
        self.coefs_ = [c.copy() for c in params.coefs]
        self.intercepts_ = [b.copy() for b in params.intercepts]

    # ---- L-BFGS --------------------------------------------------------------------

    def _fit_lbfgs(self, X, y, sample_weight, activations, deltas, coef_grads,
                   intercept_grads, layer_units):
        """scikit-learn's L-BFGS driver with X, y and the weights prepared once for the
        kernels; the weights come back in X's dtype.

        The optimiser's own vector operations run in a single-threaded BLAS: how a
        threaded BLAS splits its dot products depends on the thread count, and so would
        the result; they are cheap beside the loss and gradient, which the kernels
        compute identically for any thread count.
        """
        dtype = X.dtype
        _engine.check_weights(self.coefs_, self.intercepts_, dtype, layer_units)  # warm_start
        Y = np.ascontiguousarray(y, dtype=dtype)
        sample_weight = self._training_weights(y, sample_weight, False)
        sw = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype)
        # the least work per evaluation: the weights and the gradient live in flat arrays
        # whose layer views the kernels take (no unpacking, no packing), the rest once
        self._lbfgs_work = (_engine.FlatParameters(layer_units, dtype),
                            _engine.FlatParameters(layer_units, dtype),
                            self._spec(), self._loss_scale())
        # with callbacks, scikit-learn's driver with a callback to scipy (_lbfgs_told)
        driver = self._lbfgs_told if self._fit_task.active else super()._fit_lbfgs
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                driver(_engine.kernel_X(X, dtype), Y, sw, None, None, None, None,
                       layer_units)
        finally:
            del self._lbfgs_work
        self.coefs_, self.intercepts_ = self._kernel_params(dtype)

    def _lbfgs_told(self, X, y, sample_weight, activations, deltas, coef_grads,
                    intercept_grads, layer_units):
        """scikit-learn's _fit_lbfgs (the same call to scipy, so the same numbers) with
        a callback that makes each iteration a subtask for the callbacks and stops when
        one asks (_callbacks.IterationBridge)."""
        sk = sys.modules[_sk.MLPClassifier.__module__]  # its helpers, of its version
        packed = sk._pack(self.coefs_, self.intercepts_)
        view = _engine.FlatParameters(layer_units, np.float64)

        def unflatten(x):
            view.flat[...] = x
            return view.coefs, view.intercepts

        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        bridge = _callbacks.IterationBridge(self._fit_task, unflatten, packed, "lbfgs-iter")
        try:
            opt_res = scipy.optimize.minimize(
                self._loss_grad_lbfgs, packed, method="L-BFGS-B", jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                         **sk._get_additional_lbfgs_options_dict("iprint", iprint)},
                args=(X, y, sample_weight, activations, deltas, coef_grads,
                      intercept_grads),
                callback=bridge)
        finally:
            bridge.close()
        self.n_iter_ = sk._check_optimize_result("lbfgs", opt_res, self.max_iter)
        self.loss_ = opt_res.fun
        coefs, intercepts = unflatten(opt_res.x)
        self.coefs_ = [c.copy() for c in coefs]
        self.intercepts_ = [b.copy() for b in intercepts]

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight, *unused):
        """Loss and packed float64 gradient at packed_coef_inter, from the kernels."""
        params, grads, spec, loss_scale = self._lbfgs_work
        np.copyto(params.flat, packed_coef_inter, casting="unsafe")  # float32 fits: rounded
        loss, _, _ = _engine.loss_and_grad(
            params.coefs, params.intercepts, spec, X, y, sample_weight, self.alpha,
            loss_scale, out=(grads.coefs, grads.intercepts))
        return loss, grads.flat.astype(np.float64)  # a copy: the optimiser may keep it

    # ---- SGD and Adam --------------------------------------------------------------

    def _validation_loss(self, spec, X, Y, sample_weight):
        """The loss of the current weights on the validation rows (X as kernel_X gives
        it, Y the targets of the output units): the kernels' forward pass and
        scikit-learn's loss function (as its _backprop computes the training loss),
        without the L2 term."""
        out = _engine.forward(self.coefs_, self.intercepts_, spec, X)
        name = self.loss
        if name == "log_loss" and self.out_activation_ == "logistic":
            name = "binary_log_loss"
        return float(LOSS_FUNCTIONS[name](Y, out, sample_weight))

    def _stopping_rule(self, early_stopping, X_val, y_val, sample_weight_val,
                       optimizer=None):
        """scikit-learn's steps after an epoch, for epochs run one per call (early stopping,
        verbose or callbacks; and rprop's iterations): the no-improvement count (its own
        method: on the validation score, or the training loss) and, past
        n_iter_no_change, stop or (adaptive) a smaller learning rate. The kernels have
        advanced the schedule. True to stop. optimizer: the one that decides (default:
        the stochastic solvers')."""
        self._update_no_improvement_count(early_stopping, X_val, y_val, sample_weight_val)
        if self._no_improvement_count <= self.n_iter_no_change:
            return False
        # not better than last `n_iter_no_change` iterations by tol
        if early_stopping:
            msg = ("Validation score did not improve more than tol=%f for %d consecutive "
                   "epochs." % (self.tol, self.n_iter_no_change))
        else:
            msg = ("Training loss did not improve more than tol=%f for %d consecutive "
                   "epochs." % (self.tol, self.n_iter_no_change))
        optimizer = self._optimizer if optimizer is None else optimizer
        if optimizer.trigger_stopping(msg, self.verbose):
            return True
        self._no_improvement_count = 0
        return False

    def _fit_stochastic(self, X, y, sample_weight, activations, deltas, coef_grads,
                        intercept_grads, layer_units, incremental):
        """scikit-learn's stochastic training loop with each epoch run by the kernels."""
        dtype = self.coefs_[0].dtype
        # updated in place by every epoch from here on (copied once if they must be)
        self.coefs_, self.intercepts_ = _engine.trainable_weights(
            self.coefs_, self.intercepts_, dtype, layer_units)
        params = self.coefs_ + self.intercepts_
        if (not incremental or not hasattr(self, "_optimizer")
                or not self._optimizer.fits(params)):
            options = {
                "sgd": dict(lr_schedule=self.learning_rate, momentum=self.momentum,
                            nesterov=self.nesterovs_momentum, power_t=self.power_t),
                "adam": dict(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon),
            }[self.solver]
            self._optimizer = _engine.OPTIMIZERS[self.solver](
                params, self.learning_rate_init, **options)

        # early_stopping in partial_fit doesn't make sense
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        # the weights of the training loss; the validation rows keep sample_weight's
        train_weight = self._training_weights(y, sample_weight, incremental)
        if early_stopping:
            # don't stratify in multilabel classification
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            weights = {"sample": sample_weight,
                       "train": None if train_weight is sample_weight else train_weight}
            named = [name for name, w in weights.items() if w is not None]
            # the rows drawn depend on their number only, not on the arrays split
            split = train_test_split(
                X, y, *[weights[name] for name in named], random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=y if should_stratify else None)
            X_train, X_val, y_train, y_val = split[:4]
            halves = dict(zip(named, zip(split[4::2], split[5::2])))
            sample_weight_train, sample_weight_val = halves.get("sample", (None, None))
            if "train" in halves:
                sample_weight_train = halves["train"][0]
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            Y_val = y_val
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, sample_weight_train = X, y, train_weight
            X_val = y_val = sample_weight_val = None

        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped"
                )
            batch_size = np.clip(self.batch_size, 1, n_samples)

        X_train = _engine.kernel_X(X_train, dtype)
        y_train = np.ascontiguousarray(y_train, dtype=dtype)
        if sample_weight_train is not None:
            sample_weight_train = np.ascontiguousarray(sample_weight_train, dtype=dtype)
        spec, loss_scale = self._spec(), self._loss_scale()
        # Each epoch's order permutes the previous one, as scikit-learn's shuffle does,
        # so that the same random_state gives the same batches. A RandomState made from
        # an integer seed is this fit's own (each fit makes it anew): the orders drawn
        # ahead and not used need not be given back to it.
        orders = (_engine.RowOrders(n_samples, self._random_state,
                                    rewind=not isinstance(self.random_state, Integral))
                  if self.shuffle else None)
        if early_stopping:  # the validation loss of each epoch (validation_loss_curve_)
            validation = (_engine.kernel_X(X_val, dtype), Y_val, sample_weight_val)
            if getattr(self, "validation_loss_curve_", None) is None:
                # warm start from a model saved or pickled before the curve existed
                self.validation_loss_curve_ = []
        task = self._fit_task
        # The kernels run blocks of epochs and apply the stopping rule on the training
        # loss between them; with early stopping (a validation score each epoch),
        # verbose output or callbacks (told of each epoch), each block is one epoch and
        # the rule is scikit-learn's own.
        rule_in_kernels = not (early_stopping or self.verbose or task.active)
        # dropout's masks: a hash keyed by a seed drawn here (only with dropout, so that
        # fits without it keep scikit-learn's random stream)
        dropout = self._dropout_rates()
        dropout_seed = (int(self._random_state.randint(0, 2 ** 63 - 1, dtype=np.int64))
                        if dropout is not None else 0)
        per_call = (_engine.epochs_per_call(n_samples, self.coefs_)
                    if rule_in_kernels and not incremental else 1)
        run = dict(self._optimizer.schedule_args(), t=self.t_, check_loss=rule_in_kernels,
                   tol=float(self.tol), n_iter_no_change=self.n_iter_no_change,
                   best_loss=np.inf if self.best_loss_ is None else float(self.best_loss_),
                   no_improvement=self._no_improvement_count)

        try:
            # n_iter_ counts this call's epochs, as in scikit-learn, but is set only once
            # an epoch has succeeded: a call that fails leaves the model as it was
            n_iter = 0
            stopped = False
            blocks = _engine.block_sizes(per_call)
            # a Ctrl-C stops the kernels before a mini-batch, never this loop's bookkeeping
            with _engine.CtrlCBetweenEpochs():
                while n_iter < self.max_iter and not stopped:
                    k = min(next(blocks), self.max_iter - n_iter)
                    task.begin_epoch(self.coefs_, self.intercepts_)
                    block = _engine.train_epochs(
                        self.coefs_, self.intercepts_, spec, X_train, y_train,
                        sample_weight_train, orders.draw(k) if orders is not None else None, k,
                        batch_size, self._optimizer, run, self.alpha, loss_scale, dropout,
                        dropout_seed)
                    if orders is not None:  # a failed epoch had drawn its order too
                        orders.keep(min(k, len(block.losses) + (block.error is not None)))
                    for loss in block.losses:
                        n_iter += 1
                        self.n_iter_ = n_iter
                        self.t_ += n_samples
                        self.loss_ = loss
                        self.loss_curve_.append(loss)
                        if self.verbose:
                            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                        if early_stopping:
                            self.validation_loss_curve_.append(
                                self._validation_loss(spec, *validation))
                        if not rule_in_kernels:
                            stopped = self._stopping_rule(early_stopping, X_val, y_val,
                                                          sample_weight_val)
                    if rule_in_kernels:
                        self.best_loss_ = run["best_loss"]
                        self._no_improvement_count = run["no_improvement"]
                        stopped = block.stopped
                    if isinstance(block.error, _engine.Diverged):
                        raise ValueError(
                            f"Solver diverged in iteration {n_iter + 1}: {block.error}"
                        ) from block.error
                    if block.error is not None:
                        raise block.error
                    if task.active:
                        stopped = task.end_epoch(self.coefs_, self.intercepts_) or stopped
                    if incremental:
                        break
                    if self.n_iter_ == self.max_iter and not stopped:
                        warnings.warn(
                            "Stochastic Optimizer: Maximum iterations (%d) "
                            "reached and the optimization hasn't converged yet."
                            % self.max_iter,
                            ConvergenceWarning,
                        )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")

        if early_stopping:
            # restore best weights
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts


def _constraints(sk_class):
    """scikit-learn's parameter constraints, with leaky_relu among the activations and a
    list of them (one per hidden layer) allowed, rprop among the solvers, rprop's
    parameters, and compute_dtype."""
    return {
        **sk_class._parameter_constraints,
        "activation": [StrOptions(_ACTIVATIONS), list],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"} | set(_engine.FULL_BATCH_OPTIMIZERS))],
        **_engine.RPROP_CONSTRAINTS,
        "compute_dtype": [None, StrOptions(set(_engine.COMPUTE_DTYPES) - {None})],
        "dropout": [Interval(Real, 0, 1, closed="left"), list],
    }



# The input dtypes that scikit-learn's validation keeps as they are.
_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _finite(a):
    """True when the float32/float64 array a holds no NaN or inf (the kernels' check where
    a is contiguous)."""
    if a.size and a.flags.aligned:
        if a.flags.c_contiguous:
            return _kernels.all_finite(a)
        if a.flags.f_contiguous:
            return _kernels.all_finite(a.T)
    return bool(np.isfinite(a).all())


def _binarized(y, classes):
    """LabelBinarizer(classes_=classes).transform(y).astype(bool) for integer labels y,
    all among the sorted integer classes of y's dtype: one class, a column of False; two,
    a column True for the second; more, one column per class."""
    if len(classes) == 1:
        return np.zeros((len(y), 1), dtype=bool)
    if len(classes) == 2:
        return (y == classes[1]).reshape(-1, 1)
    return np.searchsorted(classes, y)[:, None] == np.arange(len(classes))


class MLPClassifier(_FastMLPMixin, _callbacks.CallbackSupport, _sk.MLPClassifier):
    __doc__ = _doc(_sk.MLPClassifier)

    _parameter_constraints = {**_constraints(_sk.MLPClassifier),
                              "class_weight": [StrOptions({"balanced"}), dict, None]}
    _saved_attributes = _FastMLPMixin._saved_attributes + ("classes_",)

    # scikit-learn's parameters (get_params reads them from this signature), then fastmlp's
    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, class_weight=None, step_init=0.1,
                 eta_plus=1.2, eta_minus=0.5, step_min=1e-6, step_max=50.0,
                 compute_dtype=None, dropout=0.0):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun)
        self.class_weight = class_weight
        self.step_init = step_init
        self.eta_plus = eta_plus
        self.eta_minus = eta_minus
        self.step_min = step_min
        self.step_max = step_max
        self.compute_dtype = compute_dtype
        self.dropout = dropout

    def _fast_validate_input(self, X, y, incremental, reset):
        """scikit-learn's _validate_input without its checks, for X that
        `_clean_fit_input` takes and y a 1-D ndarray of integers in native byte order:
        the same X (the object itself), the same binarized y, and the same state
        (n_features_in_; when scikit-learn fits a new LabelBinarizer, one whose state is
        what LabelBinarizer().fit(y) leaves, and classes_). When the classes are kept
        (warm_start, partial_fit), y's labels must be those classes (warm_start) or among
        them, of their dtype. None for anything else, which takes scikit-learn's path (also
        more classes than half of more than 20 rows, which scikit-learn 1.7's
        type_of_target warns about)."""
        if not (self._clean_fit_input(X, y, reset) and y.ndim == 1
                and y.dtype.kind in "iu" and y.dtype.isnative):
            return None
        labels = np.unique(y)
        if len(y) > 20 and len(labels) > round(0.5 * len(y)):
            return None
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            binarizer = LabelBinarizer()
            # LabelBinarizer.fit's attributes, in its order: type_of_target of integers
            binarizer.y_type_ = "multiclass" if len(labels) > 2 else "binary"
            binarizer.sparse_input_ = False
            binarizer.classes_ = labels
            self._set_n_features(X, reset)
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
            return X, _binarized(y, labels)
        binarizer, classes = self._label_binarizer, self.classes_
        fitted = binarizer.classes_
        if not (type(classes) is np.ndarray and classes.dtype == y.dtype
                and type(fitted) is np.ndarray and fitted.dtype == y.dtype
                and fitted.shape == classes.shape and (fitted == classes).all()
                and (classes[1:] > classes[:-1]).all()
                and binarizer.y_type_ in ("binary", "multiclass")
                and (binarizer.neg_label, binarizer.pos_label) == (0, 1)
                and not binarizer.sparse_output):
            return None
        if self.warm_start:
            same = labels.shape == classes.shape and (labels == classes).all()
        else:
            same = np.isin(labels, classes).all()
        if not same:
            return None
        self._set_n_features(X, reset)
        return X, _binarized(y, classes)

    def _training_weights(self, y, sample_weight, incremental):
        """sample_weight times the class weight of each row (y: the binarized targets)."""
        if self.class_weight is None:
            return sample_weight
        return _weights.training_weights(
            self.class_weight, self.classes_,
            _weights.class_index(y, self._label_binarizer.y_type_), sample_weight,
            partial=incremental)

    def predict(self, X):
        y = self._fast_forward(X)
        if y is None:
            return super().predict(X)
        binarizer = self._label_binarizer
        # LabelBinarizer.inverse_transform's two cases, without its checks
        if binarizer.y_type_ == "multiclass":
            return binarizer.classes_[y.argmax(axis=1)]
        if binarizer.y_type_ == "binary" and self.n_outputs_ == 1:
            return binarizer.classes_[(y.ravel() > 0.5).astype(np.intp)]
        return binarizer.inverse_transform(y)

    def predict_proba(self, X):
        y = self._fast_forward(X)
        if y is None:
            return super().predict_proba(X)
        if self.n_outputs_ == 1:
            y = y.ravel()
            return np.vstack([1 - y, y]).T
        return y

    predict.__doc__ = _sk.MLPClassifier.predict.__doc__
    predict_proba.__doc__ = _sk.MLPClassifier.predict_proba.__doc__

    def _after_load(self):
        super()._after_load()
        self._label_binarizer = LabelBinarizer()
        if self.out_activation_ == "logistic" and self.n_outputs_ > 1:
            # multilabel: the binarizer was fitted on an indicator matrix
            self._label_binarizer.fit(np.eye(self.n_outputs_, dtype=int))
        else:
            self._label_binarizer.fit(self.classes_)


class MLPRegressor(_FastMLPMixin, _callbacks.CallbackSupport, _sk.MLPRegressor):
    __doc__ = _doc(_sk.MLPRegressor)

    _parameter_constraints = _constraints(_sk.MLPRegressor)

    # scikit-learn's parameters (get_params reads them from this signature), then fastmlp's
    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu",
                 *, solver="adam", alpha=0.0001, batch_size="auto",
                 learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, step_init=0.1,
                 eta_plus=1.2, eta_minus=0.5, step_min=1e-6, step_max=50.0,
                 compute_dtype=None, dropout=0.0):
        super().__init__(
            loss=loss, hidden_layer_sizes=hidden_layer_sizes, activation=activation,
            solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle,
            random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start,
            momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun)
        self.step_init = step_init
        self.eta_plus = eta_plus
        self.eta_minus = eta_minus
        self.step_min = step_min
        self.step_max = step_max
        self.compute_dtype = compute_dtype
        self.dropout = dropout

    def _fast_validate_input(self, X, y, incremental, reset):
        """scikit-learn's _validate_input without its checks, for X that
        `_clean_fit_input` takes and y a finite float32/float64 ndarray, 1-D or of more
        than one column (a single column is warned about): X and y themselves, and the
        same state (n_features_in_). None for anything else."""
        if not (self._clean_fit_input(X, y, reset)
                and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] > 1))
                and y.dtype in _FAST_DTYPES and _finite(y)):
            return None
        self._set_n_features(X, reset)
        return X, y

    def predict(self, X):
        y = self._fast_forward(X)
        if y is None:
            return super().predict(X)
        return y.ravel() if y.shape[1] == 1 else y

    predict.__doc__ = _sk.MLPRegressor.predict.__doc__
