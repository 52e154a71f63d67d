"""Export fitted models to ONNX (the optional extra ``fastmlp[onnx]``): MLPClassifier,
MLPRegressor and Network, alone or at the end of a scikit-learn pipeline.

The graph is fastmlp's own, written here from the fitted weights: per layer a MatMul,
an Add of the intercepts and the layer's activation (every hidden activation fastmlp has,
``leaky_relu`` with its slope among them, one per layer when the model has a list), the
output unit (identity, logistic, softmax or the Poisson loss's exp), then the labels as
the model's ``predict`` decodes them. Importing this module registers the estimators with
skl2onnx, which converts the pipeline steps before them and assembles the model.
"""
from __future__ import annotations

try:
    import skl2onnx
    from onnx import TensorProto
    from skl2onnx.common._registration import get_shape_calculator
    from skl2onnx.common.data_types import (
        DoubleTensorType, FloatTensorType, Int64TensorType, StringTensorType,
    )
except ImportError as exc:
    raise ImportError(
        "fastmlp.onnx needs skl2onnx (and onnxruntime to run the models); install them "
        "with `pip install 'fastmlp[onnx]'`"
    ) from exc

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

from . import _engine
from ._multilayer_perceptron import MLPClassifier, MLPRegressor
from .network import LOGISTIC_OUTPUTS, Network

# ONNX's operator for each activation of fastmlp (by its canonical name; leaky_relu
# takes the slope as its alpha attribute).
ONNX_ACTIVATIONS = {"identity": None, "logistic": "Sigmoid", "tanh": "Tanh",
                    "relu": "Relu", "leaky_relu": "LeakyRelu", "softmax": "Softmax",
                    "exp": "Exp"}


def _canonical(name):
    return _engine.ALIASES.get(name, name)


def _layers(model):
    """(hidden activations, one per hidden layer; output activation; leaky_relu slope)."""
    n_hidden = len(model.coefs_) - 1
    if isinstance(model, Network):
        hidden, out, slope = model.activation, model.output, model.slope
    else:
        hidden, out, slope = model.activation, model.out_activation_, 0.01
    if isinstance(hidden, str):
        hidden = [hidden] * n_hidden
    return [_canonical(a) for a in hidden], _canonical(out), float(slope)


def _decoding(model):
    """How predict turns the outputs into labels: 'single' (one logistic unit: a class
    above 1/2), 'argmax' (the largest unit's class), 'threshold' (multilabel: each unit
    above 1/2) or 'onehot' (multilabel with softmax units: the largest unit's column);
    and whether predict_proba divides each row by its sum (Network's logistic units on
    class labels)."""
    if isinstance(model, Network):
        multilabel = model.target_type_ == "multilabel-indicator"
        out = _canonical(model.output)
        normalise = out in LOGISTIC_OUTPUTS and not multilabel and model.n_outputs_ > 1
    else:
        multilabel = model._label_binarizer.y_type_ == "multilabel-indicator"
        out, normalise = model.out_activation_, False
    if multilabel:
        return ("onehot" if out == "softmax" else "threshold"), normalise
    return ("single" if model.n_outputs_ == 1 else "argmax"), normalise


class _Graph:
    """Adds nodes and constants to skl2onnx's container under unique names."""

    def __init__(self, scope, container, dtype):
        self.scope, self.container, self.dtype = scope, container, np.dtype(dtype)
        self.proto = TensorProto.DOUBLE if self.dtype == np.float64 else TensorProto.FLOAT

    def const(self, seed, array, proto=None):
        name = self.scope.get_unique_variable_name(seed)
        array = np.asarray(array)
        if proto is None:
            array = array.astype(self.dtype)
        values = array.ravel().tolist() if proto == TensorProto.STRING else array.ravel()
        self.container.add_initializer(name, proto or self.proto, list(array.shape), values)
        return name

    def node(self, op, inputs, output=None, **attrs):
        output = output or self.scope.get_unique_variable_name(op.lower())
        self.container.add_node(op, inputs, output,
                                name=self.scope.get_unique_operator_name(op), **attrs)
        return output


def _forward(g, model, x):
    """The network's output on the input named x."""
    hidden, out, slope = _layers(model)
    for layer, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        x = g.node("MatMul", [x, g.const("coef", W)])
        x = g.node("Add", [x, g.const("intercept", b)])
        act = hidden[layer] if layer < len(hidden) else out
        op = ONNX_ACTIVATIONS[act]
        if op == "LeakyRelu":
            x = g.node(op, [x], alpha=slope)
        elif op == "Softmax":
            x = g.node(op, [x], axis=1)
        elif op is not None:
            x = g.node(op, [x])
    return x


def _input_dtype(operator):
    return np.float64 if isinstance(operator.inputs[0].type, DoubleTensorType) else np.float32


def _convert_classifier(scope, operator, container):
    model = operator.raw_operator
    g = _Graph(scope, container, _input_dtype(operator))
    out = _forward(g, model, operator.inputs[0].full_name)
    decoding, normalise = _decoding(model)
    label, proba = operator.outputs[0].full_name, operator.outputs[1].full_name
    if decoding == "single":
        g.node("Concat", [g.node("Sub", [g.const("one", [[1.0]]), out]), out], proba, axis=1)
        index = g.node("Cast", [g.node("Greater", [out, g.const("half", 0.5)])],
                       to=TensorProto.INT64)
        index = g.node("Reshape", [index, g.const("flat", [-1], TensorProto.INT64)])
    elif decoding == "argmax":
        if normalise:  # Network's logistic units on class labels: rows summing to one
            total = g.node("ReduceSum", [out, g.const("axis", [1], TensorProto.INT64)],
                           keepdims=1)
            g.node("Div", [out, total], proba)
        else:
            g.node("Identity", [out], proba)
        index = g.node("ArgMax", [out], axis=1, keepdims=0)
    else:
        g.node("Identity", [out], proba)
        if decoding == "threshold":
            g.node("Cast", [g.node("Greater", [out, g.const("half", 0.5)])], label,
                   to=TensorProto.INT64)
        else:
            eye = g.const("eye", np.eye(model.n_outputs_, dtype=np.int64), TensorProto.INT64)
            g.node("Gather", [eye, g.node("ArgMax", [out], axis=1, keepdims=0)], label,
                   axis=0)
        return
    classes = np.asarray(model.classes_)
    if classes.dtype.kind in "OUS":
        table = g.const("classes", classes.astype(str), TensorProto.STRING)
    else:
        table = g.const("classes", classes.astype(np.int64), TensorProto.INT64)
    g.node("Gather", [table, index], label, axis=0)


def _convert_regressor(scope, operator, container):
    model = operator.raw_operator
    g = _Graph(scope, container, _input_dtype(operator))
    out = _forward(g, model, operator.inputs[0].full_name)
    g.node("Identity", [out], operator.outputs[0].full_name)


def _regressor_shape(operator):
    """(N, n_outputs) in the input's float type."""
    kind = DoubleTensorType if _input_dtype(operator) == np.float64 else FloatTensorType
    operator.outputs[0].type = kind([operator.inputs[0].type.shape[0],
                                     operator.raw_operator.n_outputs_])


def _classifier_shape(operator):
    """skl2onnx's label and probability types, with a multilabel model's label the
    (N, n_labels) int64 indicator matrix."""
    get_shape_calculator("SklearnMLPClassifier")(operator)
    model = operator.raw_operator
    if _decoding(model)[0] in ("threshold", "onehot"):
        operator.outputs[0].type = Int64TensorType([operator.inputs[0].type.shape[0],
                                                    model.n_outputs_])
    elif np.asarray(model.classes_).dtype.kind in "OUS":
        operator.outputs[0].type = StringTensorType([operator.inputs[0].type.shape[0]])


def _network_parser(scope, model, inputs, custom_parsers=None):
    """A Network is a classifier (label, probabilities) or a regressor (variable) by its
    output unit."""
    operator = scope.declare_local_operator("FastmlpNetwork", model)
    operator.inputs = inputs
    names = ("label", "probabilities") if is_classifier(model) else ("variable",)
    for name in names:
        operator.outputs.append(scope.declare_local_variable(name, FloatTensorType()))
    return list(operator.outputs)


_OPTIONS = {"zipmap": [True, False, "columns"], "nocl": [True, False]}
skl2onnx.update_registered_converter(MLPClassifier, "FastmlpMLPClassifier",
                                     _classifier_shape, _convert_classifier,
                                     options=_OPTIONS)
skl2onnx.update_registered_converter(MLPRegressor, "FastmlpMLPRegressor",
                                     _regressor_shape, _convert_regressor)
skl2onnx.update_registered_converter(
    Network, "FastmlpNetwork",
    lambda op: (_classifier_shape if is_classifier(op.raw_operator) else _regressor_shape)(op),
    lambda scope, op, container: (_convert_classifier if is_classifier(op.raw_operator)
                                  else _convert_regressor)(scope, op, container),
    parser=_network_parser, options={"nocl": [True, False], "zipmap": [False]})


def to_onnx(model, X_sample, **kwargs):
    """Convert a fitted MLPClassifier, MLPRegressor or Network to an ONNX model.

    Parameters
    ----------
    model : MLPClassifier, MLPRegressor or Network
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
        Inputs ``X``; outputs ``label`` and ``probabilities`` for a classifier (a
        multilabel model's label is its 0/1 indicator matrix), ``variable`` (n_samples,
        n_outputs) for a regressor. Run it with ``onnxruntime.InferenceSession(
        onx.SerializeToString())``.
    """
    check_is_fitted(model)
    if is_classifier(model) and not isinstance(model, Network):
        kwargs.setdefault("options", {"zipmap": False})
    return skl2onnx.to_onnx(model, X_sample, **kwargs)
