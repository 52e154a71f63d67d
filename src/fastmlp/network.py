"""`Network`: the multilayer perceptron of the course notes as a scikit-learn estimator.

The network is given by the full list of layer widths, input and output included, as in
the notes (``Network([784, 30, 10])``). Whole training epochs run in the C kernels
through `fastmlp._engine`; this module validates the input, encodes the targets, draws
the initial weights and the shuffles, and reports progress.
"""
from __future__ import annotations

import sys
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import label_binarize
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils._tags import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import _callbacks, _engine, _weights

# Output units that make the network a classifier; the others make it a regressor.
CLASSIFIER_OUTPUTS = {"logistic", "sigmoid", "softmax"}
# Independent units, whose values predict_proba normalises for class labels.
LOGISTIC_OUTPUTS = {"logistic", "sigmoid"}

# The loss that loss="auto" picks for each output unit.
AUTO_LOSS = {
    "identity": "squared_error",
    "linear": "squared_error",
    "logistic": "log_loss",
    "sigmoid": "log_loss",
    "softmax": "log_loss",
    "exp": "poisson",
}

# Weight initialisations: name -> (rng, fan_in, fan_out, sigma) -> (fan_in, fan_out) array.
INITS = {
    "zeros": lambda rng, n_in, n_out, sigma: np.zeros((n_in, n_out)),
    "normal": lambda rng, n_in, n_out, sigma: rng.normal(0.0, sigma, (n_in, n_out)),
    "lecun": lambda rng, n_in, n_out, sigma: rng.normal(
        0.0, np.sqrt(1.0 / n_in), (n_in, n_out)),
    "glorot_normal": lambda rng, n_in, n_out, sigma: rng.normal(
        0.0, np.sqrt(2.0 / (n_in + n_out)), (n_in, n_out)),
    "glorot_uniform": lambda rng, n_in, n_out, sigma: rng.uniform(
        -np.sqrt(6.0 / (n_in + n_out)), np.sqrt(6.0 / (n_in + n_out)), (n_in, n_out)),
    "he": lambda rng, n_in, n_out, sigma: rng.normal(
        0.0, np.sqrt(2.0 / n_in), (n_in, n_out)),
}
# What init="auto" picks for each hidden activation.
AUTO_INIT = {"relu": "he", "leaky_relu": "he"}
AUTO_INIT_DEFAULT = "glorot_uniform"

# What learning_rate="auto" picks for each solver.
AUTO_LEARNING_RATE = {"sgd": 0.1, "adam": 0.001}

# Network's dtypes, and the input dtypes the prediction fast path takes as they are.
DTYPES = {np.dtype(np.float32), np.dtype(np.float64)}


class Network(_callbacks.CallbackSupport, BaseEstimator):
    """A multilayer perceptron given by its layer widths, trained by mini-batch SGD or Adam,
    or by full-batch iRprop-.

    A classifier when the output units are logistic or softmax (``predict`` returns class
    labels, ``score`` is the accuracy), a regressor when they are identity or exp
    (``score`` is R^2). All parameters are checked when training starts, not here.

    Parameters
    ----------
    sizes : list of int
        The width of every layer, input first and output last: ``[784, 30, 10]`` is 784
        inputs, one hidden layer of 30 units and 10 outputs. ``[2, 1]`` has no hidden
        layer (logistic regression with ``output="logistic"``).
    activation : {"relu", "leaky_relu", "tanh", "logistic", "identity"} or list of them, \
default="relu"
        The hidden units. "sigmoid" is an alias of "logistic", "linear" of "identity".
        A list gives one per hidden layer (``init="auto"`` then picks each layer's
        initialisation by its own activation, the output layer's by the last one).
    output : {"softmax", "logistic", "identity", "exp"}, default="softmax"
        The output units. "sigmoid" is an alias of "logistic", "linear" of "identity".
    loss : str, default="auto"
        "squared_error" (alias "quadratic", "mse"), "absolute_error" (alias "mae"),
        "binary_log_loss" (alias "binary_cross_entropy"), "categorical_log_loss"
        (alias "categorical_cross_entropy", "cross_entropy"), "poisson", "log_loss"
        (binary cross-entropy after logistic units, categorical after softmax), or
        "auto": log_loss for logistic and softmax outputs, squared_error for identity,
        poisson for exp. The loss of a batch is the mean over its rows of the loss per
        row, the squared error of a row being 1/2 ||y - a||^2: the notes' quadratic cost
        C = 1/(2n) sum ||y(x) - a||^2.
    init : str, default="auto"
        How the weights are drawn: "zeros", "normal" (N(0, sigma^2)), "lecun"
        (N(0, 1/n_in)), "glorot_normal" (N(0, 2/(n_in + n_out))), "glorot_uniform"
        (U(-r, r) with r = sqrt(6/(n_in + n_out))), "he" (N(0, 2/n_in)), or "auto": he
        for relu and leaky_relu hidden units, glorot_uniform otherwise. Biases start at
        zero.
    solver : {"sgd", "adam", "rprop"}, default="sgd"
        Mini-batch SGD (with ``momentum`` and ``nesterov``), Adam (scikit-learn's
        beta_1=0.9, beta_2=0.999, epsilon=1e-8), or iRprop- (Igel and Huesken 2000):
        full batch, one step size per weight, an epoch being one iteration (the
        parameters ``step_init`` ... ``step_max``; ``batch_size``, ``learning_rate``
        and ``shuffle`` are not used, and ``loss_curve_`` holds the loss at the start
        of each iteration).
    learning_rate : float or "auto", default="auto"
        The step size of SGD and Adam: 0.1 for SGD and 0.001 for Adam when "auto".
    batch_size : int, default=32
        Rows per mini-batch (at most the number of rows).
    epochs : int, default=10
        Passes over the data made by ``fit``; ``partial_fit`` makes one.
    momentum : float in [0, 1], default=0.0
        SGD momentum; 0 is plain SGD.
    nesterov : bool, default=False
        Nesterov's momentum instead of the classical one (SGD with momentum > 0).
    alpha : float, default=0.0
        L2 penalty: alpha/2 ||W||^2 per batch, divided by the batch size as in
        scikit-learn.
    slope : float, default=0.01
        The negative slope of leaky_relu.
    sigma : float, default=0.01
        The standard deviation of init="normal".
    shuffle : bool, default=True
        Shuffle the rows before each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights and the shuffles.
    dtype : {np.float32, np.float64}, default=np.float32
        The floating type of the weights and of the arithmetic; X is converted to it.
    compute_dtype : {None, "bfloat16"}, default=None
        What the matrix products of training and prediction compute in. None: ``dtype``.
        "bfloat16": the operands of every product (inputs, activations, weights,
        deltas) are rounded to bfloat16 (nearest even) and the products summed in
        float32; the weights, the optimiser's state, the activations, the losses and the
        updates stay float32. It needs ``dtype=np.float32`` (float64 is refused with a
        ValueError; float64 X is converted to float32 like any X). It pays on CPUs with
        AMX-BF16 (Intel Sapphire Rapids and later: the tiles) or with an AVX512_BF16 at
        twice the float32 rate (AMD Zen 4 and later), for layers of a few hundred units
        or more; Intel's AVX512_BF16 without AMX runs at the float32 rate and is slower
        than float32; elsewhere the products are computed from the same rounded operands
        in float32, for the same results within float32 rounding, and no faster.
    dropout : float or list of float, default=0.0
        The probability that a hidden unit is dropped from a training row (inverted
        dropout: the kept units are scaled by 1 / (1 - p); nothing is dropped in
        prediction), one for every hidden layer or a list with one per hidden layer,
        each in [0, 1); solvers "sgd" and "adam". Which units a row drops in an epoch is
        a hash of (a seed drawn from random_state, the epoch, the row, the unit): a fit
        is reproducible and the same for any thread count.
    verbose : bool or int, default=False
        Print one line per epoch, "Iteration %d, loss = %.8f" as scikit-learn does.
    progress : bool, default=False
        Show a progress bar over the epochs with the loss and the time left (with tqdm,
        ``pip install fastmlp[progress]``), or one line per epoch with the time spent
        and left when tqdm is not installed.
    class_weight : dict, "balanced" or None, default=None
        Classifiers: the weights of the classes in the training loss, with
        scikit-learn's meaning (``LogisticRegression``): a dict ``{label: weight}``
        (classes not named weigh 1) or "balanced" (``n_samples / (n_classes *
        np.bincount(y))``); each row weighs its class weight times its sample weight.
        For an indicator matrix each column weighs its rows on its own and the weights
        multiply. ``partial_fit`` refuses "balanced" (one batch's class frequencies are
        not the data's). Regressors refuse any but None.
    step_init : float, default=0.1
        solver="rprop": the initial step size of every weight.
    eta_plus : float, default=1.2
        solver="rprop": the factor (> 1) by which a step grows while the weight's
        gradient keeps its sign.
    eta_minus : float, default=0.5
        solver="rprop": the factor (in (0, 1)) by which a step shrinks when the
        gradient changes sign (that gradient is then taken as zero).
    step_min : float, default=1e-6
        solver="rprop": the smallest step size.
    step_max : float, default=50.0
        solver="rprop": the largest step size (Riedmiller and Braun's defaults, as
        FANN's).

    Attributes
    ----------
    coefs_ : list of ndarray
        coefs_[l] is the (sizes[l], sizes[l+1]) weight matrix of layer l. Writeable:
        change them in place and predict, or build a network from given weights with
        `Network.from_weights`.
    intercepts_ : list of ndarray
        intercepts_[l] is the (sizes[l+1],) bias vector of layer l.
    n_params_ : int
        The number of weights and biases, sum over layers of n_in * n_out + n_out (for
        one hidden layer of n units, s inputs and m outputs: s*n + n + n*m + m).
    loss_curve_ : list of float
        The mean loss of each epoch trained.
    n_iter_ : int
        The number of epochs trained.
    n_features_in_ : int
        The input width seen in training.
    n_outputs_ : int
        The number of output units.
    classes_ : ndarray
        The class labels (classifiers); ``arange(n_outputs_)`` when trained on a
        one-hot or indicator matrix.
    target_type_ : str
        How classifier targets were given: "binary" or "multiclass" (labels) or
        "multilabel-indicator" (a 0/1 matrix, one column per output unit); ``predict``
        answers in the same form.

    Examples
    --------
    >>> import numpy as np
    >>> from fastmlp import Network
    >>> X = np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    >>> xor = Network.from_weights([[[1, 1], [1, 1]], [[1], [-2]]], [[0, -1], [0]],
    ...                            activation="relu", output="identity")
    >>> xor.predict(X)
    array([0., 1., 1., 0.], dtype=float32)
    """

    _parameter_constraints: dict = {
        "sizes": ["array-like"],
        "activation": [StrOptions(set(_engine.HIDDEN_ACTIVATIONS)), list],
        "output": [StrOptions(set(_engine.OUTPUT_ACTIVATIONS))],
        "loss": [StrOptions(set(_engine.LOSSES) | {"log_loss", "auto"})],
        "init": [StrOptions(set(INITS) | {"auto"})],
        "solver": [StrOptions(set(_engine.SOLVERS) | set(_engine.FULL_BATCH_OPTIMIZERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterov": ["boolean"],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "slope": [Interval(Real, None, None, closed="neither")],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "dtype": [Options(type, {np.float32, np.float64}), Options(np.dtype, DTYPES),
                  StrOptions({"float32", "float64"})],
        "compute_dtype": [None, StrOptions({"bfloat16"})],
        "dropout": [Interval(Real, 0, 1, closed="left"), list],
        "verbose": ["verbose"],
        "progress": ["boolean"],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        **_engine.RPROP_CONSTRAINTS,
    }

    # The fitted attributes a saved model keeps (see fastmlp._io); classes_ and
    # target_type_ exist for classifiers only.
    _saved_attributes = ("coefs_", "intercepts_", "n_params_", "loss_curve_", "n_iter_",
                         "n_features_in_", "n_outputs_", "classes_", "target_type_")

    def __init__(self, sizes, activation="relu", output="softmax", loss="auto",
                 init="auto", solver="sgd", learning_rate="auto", batch_size=32,
                 epochs=10, momentum=0.0, nesterov=False, alpha=0.0, slope=0.01,
                 sigma=0.01, shuffle=True, random_state=None, dtype=np.float32,
                 verbose=False, progress=False, class_weight=None, step_init=0.1,
                 eta_plus=1.2, eta_minus=0.5, step_min=1e-6, step_max=50.0,
                 compute_dtype=None, dropout=0.0):
        self.sizes = sizes
        self.activation = activation
        self.output = output
        self.loss = loss
        self.init = init
        self.solver = solver
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.momentum = momentum
        self.nesterov = nesterov
        self.alpha = alpha
        self.slope = slope
        self.sigma = sigma
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose
        self.progress = progress
        self.class_weight = class_weight
        self.step_init = step_init
        self.eta_plus = eta_plus
        self.eta_minus = eta_minus
        self.step_min = step_min
        self.step_max = step_max
        self.compute_dtype = compute_dtype
        self.dropout = dropout

    # ---- what the parameters mean ------------------------------------------------------

    def _is_classifier(self):
        return isinstance(self.output, str) and self.output in CLASSIFIER_OUTPUTS

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.required = True
        if self._is_classifier():
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_label=True)
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.target_tags.multi_output = True
        return tags

    def _dtype(self):
        return np.dtype(self.dtype)

    def _layer_sizes(self):
        """sizes as a list of ints, or a ValueError saying what is wrong with it."""
        sizes = np.asarray(self.sizes)
        if (sizes.ndim != 1 or sizes.size < 2 or sizes.dtype.kind not in "iu"
                or (sizes < 1).any()):
            raise ValueError(
                "sizes must list at least two layer widths, input first and output "
                f"last, all positive integers; got {self.sizes!r}"
            )
        return [int(s) for s in sizes]

    def _spec(self):
        loss = AUTO_LOSS[self.output] if self.loss == "auto" else self.loss
        if self.compute_dtype is not None and self._dtype() != np.float32:
            raise ValueError(f"compute_dtype={self.compute_dtype!r} computes with float32 "
                             f"weights: set dtype=np.float32 (got dtype={self._dtype()})")
        return _engine.spec(self.activation, self.output, loss, self.slope,
                            self.compute_dtype)

    # ---- weights -----------------------------------------------------------------------

    def _initialize(self, sizes, rng):
        """Fresh weights and training state for the layer widths sizes."""
        # each layer by its activation (a list gives one per hidden layer; the output
        # layer goes by the last hidden one)
        acts = ([self.activation] * (len(sizes) - 1) if isinstance(self.activation, str)
                else list(self.activation) + list(self.activation[-1:]))
        dtype = self._dtype()
        self.coefs_ = [
            INITS[AUTO_INIT.get(_engine.ALIASES.get(act, act), AUTO_INIT_DEFAULT)
                  if self.init == "auto" else self.init](rng, n_in, n_out, self.sigma)
            .astype(dtype)
            for act, n_in, n_out in zip(acts, sizes[:-1], sizes[1:])]
        self.intercepts_ = [np.zeros(n_out, dtype=dtype) for n_out in sizes[1:]]
        self.loss_curve_ = []
        self.n_iter_ = 0
        self._optimizer = None

    def _set_shape_attributes(self, sizes):
        self.n_features_in_ = sizes[0]
        self.n_outputs_ = sizes[-1]
        self.n_params_ = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))

    def _kernel_weights(self):
        """coefs_ and intercepts_ as the kernels take them (C-contiguous, writeable, of
        the network's dtype; converted copies where needed), after checking that their
        shapes chain from n_features_in_ to n_outputs_."""
        coefs, intercepts = _engine.check_weights(self.coefs_, self.intercepts_, self._dtype())
        if coefs[0].shape[0] != self.n_features_in_ or coefs[-1].shape[1] != self.n_outputs_:
            raise ValueError(
                f"coefs_ map {coefs[0].shape[0]} inputs to {coefs[-1].shape[1]} outputs; "
                f"the network was fitted with {self.n_features_in_} inputs and "
                f"{self.n_outputs_} outputs"
            )
        return coefs, intercepts

    @classmethod
    def from_weights(cls, coefs, intercepts, *, classes=None, **params):
        """A ready-to-predict network with the given weights, as in the notes' worked
        examples.

        Parameters
        ----------
        coefs : list of array-like
            coefs[l] of shape (n_in, n_out), the weights of layer l.
        intercepts : list of array-like
            intercepts[l] of shape (n_out,), the biases of layer l.
        classes : array-like, default=None
            The class labels of a classifier, one per output unit (or two for a single
            logistic unit); default ``arange(n_outputs)`` (``[0, 1]`` for one unit).
        **params
            The other parameters of `Network`. ``sizes`` defaults to the widths of the
            weights; when given it must match them.

        Returns
        -------
        Network
            A fitted network (``n_iter_ == 0``) that can predict, score and go on
            training with ``partial_fit``.
        """
        net = cls(**{"sizes": [], **params})
        net._validate_params()
        coefs, intercepts = _engine.check_weights(coefs, intercepts, net._dtype())
        # the network's own arrays: training must not write into the caller's
        coefs = [c.copy() for c in coefs]
        intercepts = [b.copy() for b in intercepts]
        widths = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        if len(net.sizes) == 0:
            net.sizes = widths
        elif net._layer_sizes() != widths:
            raise ValueError(f"sizes={net.sizes!r} does not match the weights' widths {widths}")
        net.coefs_, net.intercepts_ = coefs, intercepts
        net._set_shape_attributes(widths)
        net.loss_curve_ = []
        net.n_iter_ = 0
        net._optimizer = None
        if net._is_classifier():
            n_out = widths[-1]
            classes = np.arange(max(n_out, 2)) if classes is None else np.asarray(classes)
            net._set_classes(classes)
        return net

    # ---- targets -----------------------------------------------------------------------

    def _set_classes(self, classes):
        classes = unique_labels(classes)
        if len(classes) < 2:
            raise ValueError(f"a classifier needs at least two classes; got {classes}")
        n_out = self.n_outputs_
        if n_out != len(classes) and not (n_out == 1 and len(classes) == 2):
            raise ValueError(
                f"the output layer has {n_out} units but there are {len(classes)} "
                f"classes; the last size must be the number of classes (or 1 for two "
                f"classes with logistic output)"
            )
        if n_out == 1 and self.output == "softmax":
            raise ValueError("a single softmax unit always outputs 1; use output='logistic' "
                             "for one output unit, or two softmax units")
        self.classes_ = classes
        self.target_type_ = "binary" if len(classes) == 2 else "multiclass"

    def _encode_targets(self, y, reset, classes=None):
        """y as the 2-D float target matrix of the output units; for classifiers, sets
        classes_ and target_type_ when reset."""
        dtype = self._dtype()
        if not self._is_classifier():
            Y = y.reshape(-1, 1) if y.ndim == 1 else y
            if Y.shape[1] != self.n_outputs_:
                raise ValueError(f"y has {Y.shape[1]} target columns but the output layer "
                                 f"has {self.n_outputs_} units")
            return np.ascontiguousarray(Y, dtype=dtype)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        target_type = type_of_target(y)
        if target_type == "multilabel-indicator":
            if y.shape[1] != self.n_outputs_:
                raise ValueError(f"y is a {y.shape[1]}-column indicator matrix but the "
                                 f"output layer has {self.n_outputs_} units")
            if reset:
                self.classes_ = np.arange(y.shape[1])
                self.target_type_ = target_type
            elif self.target_type_ != target_type:
                raise ValueError("y is an indicator matrix but the network was trained on "
                                 "class labels")
            return np.ascontiguousarray(y, dtype=dtype)
        if reset:
            self._set_classes(unique_labels(y) if classes is None else classes)
        elif self.target_type_ == "multilabel-indicator":
            raise ValueError("y holds class labels but the network was trained on an "
                             "indicator matrix")
        unseen = np.setdiff1d(unique_labels(y), self.classes_)
        if len(unseen):
            raise ValueError(f"y has classes {unseen} that are not in classes_ "
                             f"{self.classes_}")
        Y = label_binarize(y, classes=self.classes_).astype(dtype)
        if Y.shape[1] == 1 and self.n_outputs_ == 2:
            Y = np.hstack([1 - Y, Y])
        return np.ascontiguousarray(Y)

    def _validate_training_data(self, X, y, sample_weight, reset, classes=None):
        X, y = validate_data(self, X, y, reset=reset, accept_sparse=["csr", "csc"],
                             dtype=self._dtype(), multi_output=True,
                             y_numeric=not self._is_classifier())
        sizes = self._layer_sizes()
        _engine.check_activations(self.activation, len(sizes) - 2)
        if (_engine.dropout_rates(self.dropout, len(sizes) - 2) is not None
                and self.solver not in ("sgd", "adam")):
            raise ValueError(f"dropout applies to the stochastic solvers 'sgd' and 'adam', "
                             f"not to solver={self.solver!r}")
        if X.shape[1] != sizes[0]:
            raise ValueError(f"X has {X.shape[1]} features but sizes[0] = {sizes[0]}")
        if reset:
            self._set_shape_attributes(sizes)
        Y = self._encode_targets(y, reset, classes)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=self._dtype())
        return X, Y, sample_weight, sizes

    def _training_weights(self, Y, sample_weight, partial):
        """sample_weight times each row's class weight (class_weight), of the dtype."""
        if self.class_weight is None:
            return sample_weight
        if not self._is_classifier():
            raise ValueError(f"class_weight is for classifiers (output logistic or "
                             f"softmax); this network has output={self.output!r}")
        weights = _weights.training_weights(
            self.class_weight, self.classes_, _weights.class_index(Y, self.target_type_),
            sample_weight, partial)
        return np.ascontiguousarray(weights, dtype=self._dtype())

    # ---- training ----------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train a fresh network for ``epochs`` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, sizes[0])
            The inputs; converted to ``dtype`` (any layout or numeric dtype).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels or a one-hot/indicator matrix (classifier), target values
            (regressor).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the loss.

        Returns
        -------
        self : Network
        """
        X, Y, weights, sizes = self._validate_training_data(X, y, sample_weight, reset=True)
        weights = self._training_weights(Y, weights, partial=False)
        self._random_state = check_random_state(self.random_state)
        self._initialize(sizes, self._random_state)
        task = _callbacks.FitTask(self, X, y, sample_weight, self.epochs)
        self._train(X, Y, weights, self.epochs, task)
        task.end()
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Train one epoch over the given rows, starting from the current weights.

        The first call on an unfitted network initialises it as ``fit`` does.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, sizes[0])
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array-like, default=None
            All the class labels; needed on the first call of a classifier trained on
            labels (not on an indicator matrix), ignored afterwards.

        Returns
        -------
        self : Network
        """
        first = not hasattr(self, "coefs_")
        if (first and self._is_classifier() and classes is None
                and np.ndim(y) == 1):
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, Y, weights, sizes = self._validate_training_data(
            X, y, sample_weight, reset=first, classes=classes)
        weights = self._training_weights(Y, weights, partial=True)
        if first:
            self._random_state = check_random_state(self.random_state)
            self._initialize(sizes, self._random_state)
        task = _callbacks.FitTask(self, X, y, sample_weight, 1)
        self._train(X, Y, weights, 1, task)
        task.end()
        return self

    def _train(self, X, Y, sample_weight, epochs, task):
        # weights set by hand must have the widths of `sizes` (the shapes X and y were
        # checked against); the optimiser restarts when its state is for other shapes
        self.coefs_[:], self.intercepts_[:] = _engine.trainable_weights(
            self.coefs_, self.intercepts_, self._dtype(), self._layer_sizes())
        if self.solver in _engine.FULL_BATCH_OPTIMIZERS:
            return self._train_full_batch(X, Y, sample_weight, epochs, task)
        optimizer = getattr(self, "_optimizer", None)
        if (not isinstance(optimizer, _engine.OptimizerState)
                or not optimizer.fits(self.coefs_ + self.intercepts_)):
            self._optimizer = self._new_optimizer()
        if not hasattr(self, "_random_state"):
            self._random_state = check_random_state(self.random_state)
        spec = self._spec()
        Xk = _engine.kernel_X(X, self._dtype())
        n = _engine.n_rows(Xk)
        batch_size = min(self.batch_size, n)
        # blocks of epochs per call to the kernels, their row orders drawn ahead (one
        # epoch per call when each epoch prints a line or is told to callbacks)
        orders = (_engine.RowOrders(n, self._random_state, compound=False)
                  if self.shuffle else None)
        per_call = (1 if self.verbose or task.active
                    else _engine.epochs_per_call(n, self.coefs_))
        run = dict(self._optimizer.schedule_args(), t=0, check_loss=False, tol=0.0,
                   n_iter_no_change=0, best_loss=np.inf, no_improvement=0)
        dropout = _engine.dropout_rates(self.dropout, len(self.coefs_) - 1)
        dropout_seed = (int(self._random_state.randint(0, 2 ** 63 - 1, dtype=np.int64))
                        if dropout is not None else 0)
        # a Ctrl-C stops the kernels before a mini-batch, never this loop's bookkeeping
        with _engine.CtrlCBetweenEpochs(), \
                _EpochReport(epochs, self.verbose, self.progress) as report:
            left = epochs
            while left:
                k = min(per_call, left)
                task.begin_epoch(self.coefs_, self.intercepts_)
                block = _engine.train_epochs(
                    self.coefs_, self.intercepts_, spec, Xk, Y, sample_weight,
                    orders.draw(k) if orders is not None else None, k, batch_size,
                    self._optimizer, run, alpha=self.alpha, dropout=dropout,
                    dropout_seed=dropout_seed)
                if orders is not None:  # a failed epoch had drawn its order too
                    orders.keep(min(k, len(block.losses) + (block.error is not None)))
                for loss in block.losses:
                    self.n_iter_ += 1
                    self.loss_curve_.append(loss)
                    report.epoch_done(self.n_iter_, loss)
                if isinstance(block.error, _engine.Diverged):
                    raise ValueError(
                        f"training diverged in epoch {self.n_iter_ + 1}: {block.error}"
                    ) from block.error
                if block.error is not None:
                    raise block.error
                left -= k
                if task.end_epoch(self.coefs_, self.intercepts_):
                    break
        return self

    def _train_full_batch(self, X, Y, sample_weight, epochs, task):
        """epochs iterations of the full-batch solver (FULL_BATCH_OPTIMIZERS) over the
        kernels' loss and gradient; its state (per-weight steps) carries over between
        calls. An iteration whose loss or gradient is not finite raises and keeps the
        weights it started from."""
        dtype, sizes = self._dtype(), self._layer_sizes()
        params = _engine.FlatParameters(sizes, dtype)
        grads = _engine.FlatParameters(sizes, dtype)
        weights = self.coefs_ + self.intercepts_
        for dst, src in zip(params.coefs + params.intercepts, weights):
            dst[...] = src
        optimizer = getattr(self, "_optimizer", None)
        if (not isinstance(optimizer, _engine.IRpropMinus)
                or not optimizer.fits(params.flat.size, dtype)):
            optimizer = self._optimizer = _engine.FULL_BATCH_OPTIMIZERS[self.solver](
                params.flat.size, dtype, self.step_init, self.eta_plus, self.eta_minus,
                self.step_min, self.step_max)
        spec = self._spec()
        Xk = _engine.kernel_X(X, dtype)
        # a Ctrl-C is raised before an iteration's weights are copied, never halfway
        with _engine.CtrlCBetweenEpochs() as ctrl_c, \
                _EpochReport(epochs, self.verbose, self.progress) as report:
            for _ in range(epochs):
                task.begin_epoch(self.coefs_, self.intercepts_, "rprop-iter")
                try:
                    loss = _engine.full_batch_iteration(optimizer, params, grads, spec, Xk,
                                                        Y, sample_weight, self.alpha)
                except _engine.Diverged as exc:
                    raise ValueError(
                        f"training diverged in epoch {self.n_iter_ + 1}: {exc}") from exc
                ctrl_c.check()
                for dst, src in zip(weights, params.coefs + params.intercepts):
                    dst[...] = src
                self.n_iter_ += 1
                self.loss_curve_.append(loss)
                report.epoch_done(self.n_iter_, loss)
                if task.end_epoch(self.coefs_, self.intercepts_):
                    break
        return self

    def _new_optimizer(self):
        lr = (AUTO_LEARNING_RATE[self.solver] if self.learning_rate == "auto"
              else self.learning_rate)
        options = {"sgd": dict(momentum=self.momentum, nesterov=self.nesterov),
                   "adam": {}}[self.solver]
        return _engine.OPTIMIZERS[self.solver](self.coefs_ + self.intercepts_, lr, **options)

    def _after_load(self):
        """Rebuild what a saved model does not keep: the optimiser starts afresh."""
        self._optimizer = None

    def save(self, path):
        """Save the parameters and the fitted weights to path, a file name or a binary
        file object (see `fastmlp.load`)."""
        from ._io import save

        save(self, path)

    # ---- prediction --------------------------------------------------------------------

    def _fast_forward(self, X):
        """The output on X without scikit-learn's validation, when it would pass X as it
        is but for its dtype: a fitted network without feature names, and a non-empty,
        C-contiguous, aligned 2-D float32 or float64 ndarray of the fitted width, with
        finite values (checked by the kernels). None for anything else (the caller then
        validates), and when the weights are not as the kernels take them."""
        if (type(X) is not np.ndarray or X.ndim != 2 or X.dtype not in DTYPES
                or not (X.flags.c_contiguous and X.flags.aligned) or X.shape[0] == 0
                or X.shape[1] != getattr(self, "n_features_in_", None)
                or hasattr(self, "feature_names_in_") or not hasattr(self, "coefs_")):
            return None
        spec = self._spec()
        predictor = _engine.predictor(self, self.coefs_, self.intercepts_, spec, make=False)
        if predictor is None:
            coefs, intercepts = self._kernel_weights()  # checks them
            if not all(a is b for a, b in zip(coefs + intercepts,
                                               self.coefs_ + self.intercepts_)):
                return None  # converted copies: the validated path
            predictor = _engine.predictor(self, self.coefs_, self.intercepts_, spec)
        return predictor(X.astype(predictor.dtype, copy=False))

    def _forward(self, X):
        out = self._fast_forward(X)
        if out is not None:
            return out
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                          dtype=self._dtype())
        coefs, intercepts = self._kernel_weights()
        return _engine.forward(coefs, intercepts, self._spec(),
                               _engine.kernel_X(X, self._dtype()))

    def predict(self, X):
        """The network's answer on X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features_in_)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs_)
            Classifier: class labels (or a 0/1 indicator matrix when trained on one: the
            largest softmax unit, or the logistic units above 1/2). Regressor: the
            outputs, 1-D when there is one output unit.
        """
        out = self._forward(X)
        if not self._is_classifier():
            return out.ravel() if out.shape[1] == 1 else out
        if self.target_type_ == "multilabel-indicator":
            if self.output == "softmax":
                return np.eye(out.shape[1], dtype=int)[out.argmax(axis=1)]
            return (out > 0.5).astype(int)
        if out.shape[1] == 1:
            return self.classes_[(out[:, 0] > 0.5).astype(int)]
        return self.classes_[out.argmax(axis=1)]

    @available_if(_is_classifier)
    def predict_proba(self, X):
        """Probability estimates, by scikit-learn's convention for the target type.

        Trained on class labels (binary or multiclass), each row holds the probabilities
        of the classes and sums to one: softmax units give them directly; logistic units
        are scores of one class against the rest, normalised to sum to one as
        scikit-learn's one-vs-rest ``LogisticRegression`` does (a single logistic unit p
        gives [1 - p, p]). Trained on an indicator matrix (multilabel), the logistic
        units' values are the independent probabilities of each label (softmax units'
        values sum to one).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features_in_)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Column j goes with classes_[j].
        """
        out = self._forward(X)
        if out.shape[1] == 1:
            return np.hstack([1 - out, out])
        if self.output in LOGISTIC_OUTPUTS and self.target_type_ != "multilabel-indicator":
            total = out.sum(axis=1, keepdims=True)
            # every unit may round to 0 far from the data: no class is preferred there
            return np.divide(out, total, out=np.full_like(out, 1 / out.shape[1]),
                             where=total > 0)
        return out

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifier) or the coefficient of determination R^2 (regressor).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features_in_)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs_)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        metric = accuracy_score if self._is_classifier() else r2_score
        return metric(y, self.predict(X), sample_weight=sample_weight)


class _EpochReport:
    """Per-epoch report of a training run: a tqdm bar (progress=True with tqdm
    installed), plain lines (verbose, or progress without tqdm), both (verbose and
    progress with tqdm: the lines are printed through the bar), or nothing."""

    def __init__(self, epochs, verbose, progress):
        self.epochs = epochs
        self.timed = progress
        self.lines = bool(verbose or progress)
        self.done = 0
        self.bar = None
        if progress:
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=epochs, unit="epoch", desc="training")
                self.lines = bool(verbose)  # the bar shows the time
                self.timed = False

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def epoch_done(self, epoch, loss):
        self.done += 1
        if self.lines:
            line = "Iteration %d, loss = %.8f" % (epoch, loss)
            if self.timed:
                spent = time.perf_counter() - self.start
                left = spent / self.done * (self.epochs - self.done)
                line += f", {spent:.2f} s spent, {left:.2f} s left"
            if self.bar is not None:
                # above the bar, which is redrawn below it (a plain print would be
                # overwritten by the bar's next refresh)
                self.bar.write(line, file=sys.stdout)
            else:
                print(line, file=sys.stdout, flush=True)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.6g}", refresh=False)
            self.bar.update(1)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False
