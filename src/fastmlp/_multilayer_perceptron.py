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

import warnings

import numpy as np
from sklearn import neural_network as _sk
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import validate_data
from threadpoolctl import threadpool_limits

from . import _engine, _kernels, _sklearn_private

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
    in float32 (scikit-learn returns float64 weights there), and ``compute_dtype``
    (last below) chooses bfloat16 matrix products."""
    doc = sk_class.__doc__
    doc = doc[doc.index("Parameters\n"):doc.index("References\n")]
    doc = doc.replace("activation : {'identity', 'logistic', 'tanh', 'relu'}",
                      "activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu'} "
                      "or list of them")
    doc = doc.replace("""        Activation function for the hidden layer.""",
                      """        Activation function for the hidden layers: one for all, or a list with one
        per hidden layer (fastmlp; each layer's initial weights then follow its own
        activation, the output layer's the last one).""")
    at = doc.index("    Attributes\n")
    doc = doc[:at] + _COMPUTE_DTYPE_DOC + "\n" + doc[at:]
    return summary + "\n\n    " + doc


_COMPUTE_DTYPE_DOC = """    compute_dtype : {None, 'bfloat16'}, default=None
        (fastmlp only) What the matrix products of training and prediction compute in.
        None: the dtype of X (float32 or float64), as scikit-learn. 'bfloat16': the
        operands of every product (inputs, activations, weights, deltas) are rounded to
        bfloat16 (nearest even) and the products summed in float32; the weights, the
        optimiser's state, the activations, the losses and the updates are float32.
        float64 X is converted to float32, and prediction computes in float32 too.
        Pays on CPUs with AVX512_BF16 for hidden layers of a few hundred units or more.
"""


class _FastMLPMixin:
    """The kernel-backed training and forward paths shared by both estimators."""

    _saved_attributes = (
        "coefs_", "intercepts_", "n_features_in_", "feature_names_in_", "n_layers_",
        "n_outputs_", "out_activation_", "n_iter_", "t_", "loss_", "best_loss_",
        "loss_curve_", "validation_scores_", "best_validation_score_",
        "_no_improvement_count",
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
        """scikit-learn's checks; with bfloat16 products, float64 X made float32 (the
        weights then are float32)."""
        X, y = super()._validate_input(X, y, incremental, reset)
        if self.compute_dtype is not None and X.dtype != np.float32:
            X = X.astype(np.float32)
        return X, y

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

    def _fit(self, *args, **kwargs):
        """scikit-learn's `_fit` (fit and partial_fit), after checking that the private
        methods the overrides below replace or call are those they were written for: an
        unknown scikit-learn gets one clear error here rather than a TypeError mid-fit;
        and that a list of activations has one per hidden layer."""
        _sklearn_private.check()
        if not isinstance(self.activation, str):
            unknown = [a for a in self.activation if a not in _ACTIVATIONS]
            if unknown:
                raise ValueError(f"activation: unknown names {unknown}; expected each of "
                                 f"{sorted(_ACTIVATIONS)}")
            sizes = self.hidden_layer_sizes
            _engine.check_activations(self.activation,
                                      len(sizes) if hasattr(sizes, "__iter__") else 1)
        return super()._fit(*args, **kwargs)

    def _initialize(self, y, layer_units, dtype):
        # With one activation per hidden layer, scikit-learn's Glorot rule (its bound
        # depends on the activation) is applied layer by layer, the output layer's by the
        # last hidden activation, as scikit-learn takes the hidden one for every layer.
        if not isinstance(self.activation, str):
            self._init_activations = iter(list(self.activation) + [self.activation[-1]])
        try:
            super()._initialize(y, layer_units, dtype)
        finally:
            self.__dict__.pop("_init_activations", None)

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
        otherwise (NumPy's promotion, as in _forward_pass_fast)."""
        if (type(X) is not np.ndarray or X.ndim != 2 or X.dtype not in _FAST_DTYPES
                or not (X.flags.c_contiguous and X.flags.aligned) or X.shape[0] == 0
                or X.shape[1] != getattr(self, "n_features_in_", None)
                or hasattr(self, "feature_names_in_") or not hasattr(self, "coefs_")):
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
        sw = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype)
        # the least work per evaluation: the weights and the gradient live in flat arrays
        # whose layer views the kernels take (no unpacking, no packing), the rest once
        self._lbfgs_work = (_engine.FlatParameters(layer_units, dtype),
                            _engine.FlatParameters(layer_units, dtype),
                            self._spec(), self._loss_scale())
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                super()._fit_lbfgs(_engine.kernel_X(X, dtype), Y, sw, None, None, None,
                                   None, layer_units)
        finally:
            del self._lbfgs_work
        self.coefs_, self.intercepts_ = self._kernel_params(dtype)

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight, *unused):
        """Loss and packed float64 gradient at packed_coef_inter, from the kernels."""
        params, grads, spec, loss_scale = self._lbfgs_work
        np.copyto(params.flat, packed_coef_inter, casting="unsafe")  # float32 fits: rounded
        loss, _, _ = _engine.loss_and_grad(
            params.coefs, params.intercepts, spec, X, y, sample_weight, self.alpha,
            loss_scale, out=(grads.coefs, grads.intercepts))
        return loss, grads.flat.astype(np.float64)  # a copy: the optimiser may keep it

    # ---- SGD and Adam --------------------------------------------------------------

    def _stopping_rule(self, early_stopping, X_val, y_val, sample_weight_val):
        """scikit-learn's steps after an epoch, for epochs run one per call (early stopping
        or verbose): the no-improvement count (its own method: on the validation score,
        or the training loss) and, past n_iter_no_change, stop or (adaptive) a smaller
        learning rate. The kernels have advanced the schedule. True to stop."""
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
        if self._optimizer.trigger_stopping(msg, self.verbose):
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
        if early_stopping:
            # don't stratify in multilabel classification
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            split = train_test_split(
                *arrays, random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=y if should_stratify else None)
            X_train, X_val, y_train, y_val = split[:4]
            sample_weight_train, sample_weight_val = (split[4:] or [None, None])
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
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
        # so that the same random_state gives the same batches.
        orders = _engine.RowOrders(n_samples, self._random_state) if self.shuffle else None
        # The kernels run blocks of epochs and apply the stopping rule on the training
        # loss between them; with early stopping (a validation score each epoch) or
        # verbose output, each block is one epoch and the rule is scikit-learn's own.
        rule_in_kernels = not (early_stopping or self.verbose)
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
            while n_iter < self.max_iter and not stopped:
                k = min(per_call, self.max_iter - n_iter)
                block = _engine.train_epochs(
                    self.coefs_, self.intercepts_, spec, X_train, y_train,
                    sample_weight_train, orders.draw(k) if orders is not None else None, k,
                    batch_size, self._optimizer, run, self.alpha, loss_scale)
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
    list of them (one per hidden layer) allowed, and compute_dtype."""
    return {**sk_class._parameter_constraints,
            "activation": [StrOptions(_ACTIVATIONS), list],
            "compute_dtype": [None, StrOptions(set(_engine.COMPUTE_DTYPES) - {None})]}


# The input dtypes that scikit-learn's validation keeps as they are.
_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class MLPClassifier(_FastMLPMixin, _sk.MLPClassifier):
    __doc__ = _doc(_sk.MLPClassifier)

    _parameter_constraints = _constraints(_sk.MLPClassifier)
    _saved_attributes = _FastMLPMixin._saved_attributes + ("classes_",)

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, compute_dtype=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun)
        self.compute_dtype = compute_dtype

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


class MLPRegressor(_FastMLPMixin, _sk.MLPRegressor):
    __doc__ = _doc(_sk.MLPRegressor)

    _parameter_constraints = _constraints(_sk.MLPRegressor)

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu",
                 *, solver="adam", alpha=0.0001, batch_size="auto",
                 learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, compute_dtype=None):
        super().__init__(
            loss=loss, hidden_layer_sizes=hidden_layer_sizes, activation=activation,
            solver=solver, alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun)
        self.compute_dtype = compute_dtype

    def predict(self, X):
        y = self._fast_forward(X)
        if y is None:
            return super().predict(X)
        return y.ravel() if y.shape[1] == 1 else y

    predict.__doc__ = _sk.MLPRegressor.predict.__doc__
