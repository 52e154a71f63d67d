"""Export fitted MLPClassifier and MLPRegressor models to ONNX with skl2onnx (the optional
extra ``fastmlp[onnx]``).

Importing this module registers fastmlp's estimators with skl2onnx, so that
``skl2onnx.to_onnx`` also converts them inside pipelines. fastmlp's estimators carry
scikit-learn's fitted attributes, so skl2onnx's own MLP shape calculators and converters
serve them unchanged. What those converters get wrong or lack, for scikit-learn's models
as well, is refused with a clear error instead: the activations fastmlp adds
(``leaky_relu``, the ``exp`` output of ``loss="poisson"``), regressors with several
outputs and multilabel classifiers with two labels.
"""
from __future__ import annotations

try:
    import skl2onnx
    from skl2onnx.common._registration import get_converter, get_shape_calculator
except ImportError as exc:
    raise ImportError(
        "fastmlp.onnx needs skl2onnx (and onnxruntime to run the models); install them "
        "with `pip install 'fastmlp[onnx]'`"
    ) from exc

from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

from ._multilayer_perceptron import MLPClassifier, MLPRegressor

# What skl2onnx's MLP converters translate (their activation table).
ONNX_HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
ONNX_OUTPUT_ACTIVATIONS = ("identity", "logistic", "softmax")


def _check_convertible(model):
    classifier = is_classifier(model)
    if not classifier and model.n_outputs_ > 1:
        raise ValueError(
            f"cannot convert an MLPRegressor with {model.n_outputs_} outputs to ONNX: "
            f"skl2onnx's MLP converter reshapes the prediction to a single column"
        )
    multilabel = classifier and model._label_binarizer.y_type_ == "multilabel-indicator"
    if multilabel and model.n_outputs_ == 2:
        raise ValueError(
            "cannot convert a multilabel MLPClassifier with two labels to ONNX: "
            "skl2onnx's MLP converter treats it as a binary classifier"
        )
    for name, value, supported in (
        ("activation", model.activation, ONNX_HIDDEN_ACTIVATIONS),
        ("output activation", model.out_activation_, ONNX_OUTPUT_ACTIVATIONS),
    ):
        if value not in supported:
            raise ValueError(
                f"cannot convert {type(model).__name__} with {name} {value!r} to ONNX: "
                f"skl2onnx's MLP converter supports {', '.join(supported)}"
            )


def _reuse(alias):
    """skl2onnx's shape calculator and converter for alias, the converter checking first
    that the model's activations are ones it translates."""
    converter = get_converter(alias)

    def convert(scope, operator, container):
        _check_convertible(operator.raw_operator)
        converter(scope, operator, container)

    return get_shape_calculator(alias), convert, converter.get_allowed_options()


for _model, _alias in ((MLPClassifier, "SklearnMLPClassifier"),
                       (MLPRegressor, "SklearnMLPRegressor")):
    _shape, _convert, _options = _reuse(_alias)
    skl2onnx.update_registered_converter(
        _model, "Fastmlp" + _model.__name__, _shape, _convert, options=_options)


def to_onnx(model, X_sample, **kwargs):
    """Convert a fitted MLPClassifier or MLPRegressor to an ONNX model.

    Parameters
    ----------
    model : MLPClassifier or MLPRegressor
        The fitted estimator, or a scikit-learn pipeline ending in one.
    X_sample : array-like of shape (n_samples, n_features)
        A few input rows; their dtype (float32 or float64) and number of columns
        set the ONNX input's type.
    **kwargs
        Passed to ``skl2onnx.to_onnx`` (``target_opset``, ``options``, ...). By
        default a classifier's probabilities come out as a plain (n_samples,
        n_classes) tensor (``options={"zipmap": False}``) rather than a list of
        dictionaries.

    Returns
    -------
    onx : onnx.ModelProto
        Inputs ``X``; outputs ``label`` and ``probabilities`` for a classifier,
        ``variable`` for a regressor. Run it with ``onnxruntime.InferenceSession(
        onx.SerializeToString())``.

    Raises
    ------
    ValueError
        If skl2onnx's converter cannot translate the model faithfully: an activation
        it lacks (``leaky_relu``, the ``exp`` output of the Poisson loss), a
        regressor with several outputs (it reshapes the output to one column) or a
        multilabel classifier with two labels (it takes it for a binary one).
    """
    check_is_fitted(model)
    if is_classifier(model):
        kwargs.setdefault("options", {"zipmap": False})
    return skl2onnx.to_onnx(model, X_sample, **kwargs)
