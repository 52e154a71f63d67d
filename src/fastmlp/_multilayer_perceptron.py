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
from sklearn.neural_network._multilayer_perceptron import _pack
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import shuffle
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import validate_data
from threadpoolctl import threadpool_limits

from . import _engine

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
                      "activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu'}")
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

    def _clean_input(self, X):
        """X itself when scikit-learn's checks would pass it unchanged and without a
        warning: a fitted model without feature names, and a non-empty, C-contiguous,
        aligned 2-D float32 or float64 ndarray of the fitted width with finite values.
        None for anything else, which then takes scikit-learn's own path (its checks,
        conversions, errors and warnings)."""
        if (type(X) is not np.ndarray or X.ndim != 2 or X.dtype not in _FAST_DTYPES
                or not (X.flags.c_contiguous and X.flags.aligned) or X.shape[0] == 0
                or X.shape[1] != getattr(self, "n_features_in_", None)
                or hasattr(self, "feature_names_in_") or not hasattr(self, "coefs_")):
            return None
        return X if np.isfinite(X).all() else None

    def _forward_clean(self, X):
        """_forward_pass_fast on an input _clean_input passed, without its checks:
        float32 when X and the weights are, float64 otherwise (NumPy's promotion)."""
        dtype = X.dtype if X.dtype == self.coefs_[0].dtype else _FAST_DTYPES[1]
        if self.compute_dtype is not None:  # bfloat16 products: float32
            dtype = _FAST_DTYPES[0]
        coefs, intercepts = self._kernel_params(dtype)
        return _engine.forward(coefs, intercepts, self._spec(),
                               X if X.dtype == dtype else X.astype(dtype))

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
        with threadpool_limits(limits=1, user_api="blas"):
            super()._fit_lbfgs(_engine.kernel_X(X, dtype), Y, sw, None, None, None, None,
                               layer_units)
        self.coefs_, self.intercepts_ = self._kernel_params(dtype)

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight, *unused):
        """Loss and packed float64 gradient at packed_coef_inter, from the kernels."""
        self._unpack(packed_coef_inter)
        coefs, intercepts = self._kernel_params(y.dtype)
        loss, coef_grads, intercept_grads = _engine.loss_and_grad(
            coefs, intercepts, self._spec(), X, y, sample_weight, self.alpha,
            self._loss_scale())
        return loss, _pack(coef_grads, intercept_grads).astype(np.float64, copy=False)

    # ---- SGD and Adam --------------------------------------------------------------

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
        # Shuffling permutes the previous epoch's order, as scikit-learn does, so that
        # the same random_state gives the same batches.
        sample_idx = np.arange(n_samples, dtype=np.int64)

        try:
            # n_iter_ counts this call's epochs, as in scikit-learn, but is set only once
            # an epoch has succeeded: a call that fails leaves the model as it was
            n_iter = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = shuffle(sample_idx, random_state=self._random_state)
                try:
                    self.loss_ = _engine.train_epoch(
                        self.coefs_, self.intercepts_, spec, X_train, y_train,
                        sample_weight_train, sample_idx if self.shuffle else None,
                        batch_size, self._optimizer, self.alpha, loss_scale)
                except _engine.Diverged as exc:
                    raise ValueError(
                        f"Solver diverged in iteration {n_iter + 1}: {exc}"
                    ) from exc

                n_iter += 1
                self.n_iter_ = n_iter
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

                # update no_improvement_count based on training loss or
                # validation score according to early_stopping
                self._update_no_improvement_count(
                    early_stopping, X_val, y_val, sample_weight_val
                )

                # for learning rate that needs to be updated at iteration end
                self._optimizer.iteration_ends(self.t_)

                if self._no_improvement_count > self.n_iter_no_change:
                    # not better than last `n_iter_no_change` iterations by tol
                    # stop or decrease learning rate
                    if early_stopping:
                        msg = (
                            "Validation score did not improve more than "
                            "tol=%f for %d consecutive epochs."
                            % (self.tol, self.n_iter_no_change)
                        )
                    else:
                        msg = (
                            "Training loss did not improve more than tol=%f"
                            " for %d consecutive epochs."
                            % (self.tol, self.n_iter_no_change)
                        )

                    is_stopping = self._optimizer.trigger_stopping(msg, self.verbose)
                    if is_stopping:
                        break
                    else:
                        self._no_improvement_count = 0

                if incremental:
                    break

                if self.n_iter_ == self.max_iter:
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
    """scikit-learn's parameter constraints, with leaky_relu among the activations, and
    compute_dtype."""
    return {**sk_class._parameter_constraints, "activation": [StrOptions(_ACTIVATIONS)],
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
        X_clean = self._clean_input(X)
        if X_clean is None:
            return super().predict(X)
        y = self._forward_clean(X_clean)
        binarizer = self._label_binarizer
        # LabelBinarizer.inverse_transform's two cases, without its checks
        if binarizer.y_type_ == "multiclass":
            return binarizer.classes_[y.argmax(axis=1)]
        if binarizer.y_type_ == "binary" and self.n_outputs_ == 1:
            return binarizer.classes_[(y.ravel() > 0.5).astype(np.intp)]
        return binarizer.inverse_transform(y)

    def predict_proba(self, X):
        X_clean = self._clean_input(X)
        if X_clean is None:
            return super().predict_proba(X)
        y = self._forward_clean(X_clean)
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
        X_clean = self._clean_input(X)
        if X_clean is None:
            return super().predict(X)
        y = self._forward_clean(X_clean)
        return y.ravel() if y.shape[1] == 1 else y

    predict.__doc__ = _sk.MLPRegressor.predict.__doc__
