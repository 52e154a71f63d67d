"""Model files that cannot run code when they are read.

`save(model, path)` writes a fitted `Network`, `MLPClassifier` or `MLPRegressor` (to a
path or a binary file object) as one zip archive in NumPy's ``.npz`` layout: a ``metadata.npy`` member holding UTF-8 JSON (the
format and its version, the class, ``get_params()`` and the fitted attributes that are
not arrays) and one ``.npy`` member per array. `load(path)` reads it back without
pickle: the class is looked up by name in a fixed table of fastmlp's estimators, every
array header is checked (plain numeric or unicode dtypes only, a shape that matches the
member's size) before any data is read, members must be stored uncompressed (so a file
cannot expand into more memory than its own size), and the weights must chain into a
network of finite numbers. Anything else is a ValueError that says what is wrong.

Pickle (``pickle.dump(model, f)``) keeps working as for any scikit-learn estimator.
"""
from __future__ import annotations

import importlib
import io
import json
import os
import tempfile
import zipfile

import numpy as np
from sklearn.utils.validation import check_is_fitted

from . import _engine

FORMAT = "fastmlp-model"
# The newest format this fastmlp reads and writes. Version 2 adds dict parameters
# (class_weight); a file is written with the oldest version that holds it (1 unless a
# parameter is a dict), so that earlier fastmlp versions read what they can.
VERSION = 2

# The classes a file may name, and the module of each: a file names a key of this
# table, never a module path.
CLASSES = {
    "Network": "network",
    "MLPClassifier": "_multilayer_perceptron",
    "MLPRegressor": "_multilayer_perceptron",
}

METADATA = "metadata.npy"
MAX_MEMBERS = 10_000
MAX_METADATA_BYTES = 64 << 20
# Array dtypes a file may hold: booleans, integers, floats, unicode strings.
ARRAY_KINDS = "biufU"
# The dtype parameters a file may name (Network's dtype), by NumPy's name.
DTYPES = {"float32": np.float32, "float64": np.float64}


def _class_table():
    package = __name__.rpartition(".")[0]
    return {name: getattr(importlib.import_module(f"{package}.{module}"), name)
            for name, module in CLASSES.items()}


# ---- writing ---------------------------------------------------------------------------

def _encode(value, arrays, where):
    """value as JSON, with arrays replaced by {"array": index} into `arrays`."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, arrays, where) for v in value]}
    if isinstance(value, dict):  # version 2: keys of class labels, numbers or strings
        bad = [k for k in value if not isinstance(k, (str, int, float, np.number))]
        if bad:
            raise TypeError(f"{where} has the key {bad[0]!r}; a fastmlp model file holds "
                            f"dicts keyed by numbers or strings")
        return {"dict": [[_encode(k, arrays, where), _encode(v, arrays, where)]
                         for k, v in value.items()]}
    if isinstance(value, list):
        return [_encode(v, arrays, where) for v in value]
    if isinstance(value, np.dtype) and value.name in DTYPES:
        return {"dtype": value.name}
    if isinstance(value, type) and value in DTYPES.values():
        return {"dtype_type": np.dtype(value).name}
    if isinstance(value, np.ndarray):
        return _encode_array(value, arrays, where)
    raise TypeError(
        f"{where} is a {type(value).__name__}, which a fastmlp model file cannot hold "
        f"(it holds numbers, strings, lists and arrays); set it to an int or None, or "
        f"save the model with pickle"
    )


def _encode_array(a, arrays, where):
    tag = {}
    if a.dtype.kind == "O":
        if not all(isinstance(v, str) for v in a.flat):
            kinds = sorted({type(v).__name__ for v in a.flat})
            raise TypeError(
                f"{where} is an object array of {', '.join(kinds)}; a fastmlp model file "
                f"holds numeric or string labels only: save the model with pickle"
            )
        a = a.astype(str)
        tag["object"] = True
    if a.dtype.kind not in ARRAY_KINDS:
        raise TypeError(f"{where} has dtype {a.dtype}, which a fastmlp model file cannot "
                        f"hold; save the model with pickle")
    arrays.append(np.ascontiguousarray(a))
    return {"array": len(arrays) - 1, **tag}


def save(model, path):
    """Write a fitted fastmlp estimator to path in a format that runs no code on load.

    Parameters
    ----------
    model : Network, MLPClassifier or MLPRegressor
        A fitted estimator (exactly one of these classes: a subclass is saved with
        pickle).
    path : str, os.PathLike or binary file object
        The file to write (any name; ``.npz`` is customary). A path is written to a
        temporary file first and renamed, so an interrupted save leaves no partial file.
        A file object opened for writing bytes (``open(name, "wb")``, ``io.BytesIO()``)
        receives the file at its current position and is left open.

    Raises
    ------
    TypeError
        When the class is not one of fastmlp's, a parameter or attribute cannot be
        stored (a RandomState as random_state, object labels of mixed types), or the
        file object is opened in text mode.
    sklearn.exceptions.NotFittedError
        When the model is not fitted.
    """
    name = type(model).__name__
    if name not in CLASSES or _class_table()[name] is not type(model):
        raise TypeError(f"fastmlp.save writes {sorted(CLASSES)} models, not "
                        f"{type(model).__module__}.{type(model).__qualname__}; use pickle")
    check_is_fitted(model)
    arrays = []
    params = {k: _encode(v, arrays, f"parameter {k!r}")
              for k, v in model.get_params(deep=False).items()}
    attributes = {k: _encode(getattr(model, k), arrays, f"attribute {k!r}")
                  for k in model._saved_attributes if hasattr(model, k)}
    from . import __version__
    version = 2 if any(isinstance(v, dict) for v in model.get_params(deep=False).values()) \
        else 1
    meta = {"format": FORMAT, "version": version, "fastmlp_version": __version__,
            "class": name, "params": params, "attributes": attributes,
            "n_arrays": len(arrays)}
    text = json.dumps(meta, allow_nan=True).encode("utf-8")

    if hasattr(path, "write"):
        _check_binary(path, "save")
        _write_zip(path, text, arrays)
        return
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".fastmlp-", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            _write_zip(f, text, arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _check_binary(f, verb):
    if isinstance(f, io.TextIOBase):
        raise TypeError(f"fastmlp.{verb} needs a file opened in binary mode "
                        f"('{'wb' if verb == 'save' else 'rb'}'), not a text file")


def _write_zip(f, text, arrays):
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        _write_npy(zf, METADATA, np.frombuffer(text, dtype=np.uint8))
        for i, a in enumerate(arrays):
            _write_npy(zf, f"array_{i}.npy", a)


def _write_npy(zf, name, a):
    with zf.open(name, "w", force_zip64=a.nbytes > (1 << 30)) as member:
        np.lib.format.write_array(member, a, allow_pickle=False)


# ---- reading ---------------------------------------------------------------------------

class _Invalid(ValueError):
    """A reason the file is not a valid model file (made into the message of load's
    ValueError)."""


def _read_npy(zf, info, max_bytes=None):
    """The array of a stored .npy member, checked before its data is read."""
    if max_bytes is not None and info.file_size > max_bytes:
        raise _Invalid(f"member {info.filename} is {info.file_size} bytes, more than the "
                       f"{max_bytes} allowed")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise _Invalid(f"member {info.filename} has .npy version {version}")
        if dtype.kind not in ARRAY_KINDS or dtype.hasobject or dtype.fields or dtype.subdtype:
            raise _Invalid(f"member {info.filename} has dtype {dtype}; a model file holds "
                           f"numeric and string arrays only")
        if not all(isinstance(s, int) and s >= 0 for s in shape):
            raise _Invalid(f"member {info.filename} has an invalid shape {shape}")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if f.tell() + nbytes != info.file_size:
            raise _Invalid(f"member {info.filename}: its header announces shape {shape} "
                           f"of {dtype} ({nbytes} bytes) but the member holds "
                           f"{info.file_size - f.tell()} bytes")
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise _Invalid(f"member {info.filename} is truncated")
    a = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return np.array(a, order="C")  # owned, writeable, C-contiguous


def _check_members(zf, file_size):
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise _Invalid(f"{len(infos)} members, more than {MAX_MEMBERS}")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise _Invalid("duplicate member names")
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise _Invalid(f"member {info.filename} is compressed; fastmlp model files "
                           f"store their members uncompressed")
        if not 0 <= info.header_offset <= info.header_offset + info.file_size <= file_size:
            raise _Invalid(f"member {info.filename} extends past the end of the file")
    return {i.filename: i for i in infos}


def _decode(value, arrays, used, where):
    """The inverse of _encode."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(v, arrays, used, where) for v in value]
    if isinstance(value, dict):
        keys = set(value)
        if keys == {"tuple"} and isinstance(value["tuple"], list):
            return tuple(_decode(v, arrays, used, where) for v in value["tuple"])
        if (keys == {"dict"} and isinstance(value["dict"], list)
                and all(isinstance(kv, list) and len(kv) == 2
                        and isinstance(kv[0], (str, int, float)) for kv in value["dict"])):
            return {k: _decode(v, arrays, used, where) for k, v in value["dict"]}
        if keys == {"dtype"} and value["dtype"] in DTYPES:
            return np.dtype(value["dtype"])
        if keys == {"dtype_type"} and value["dtype_type"] in DTYPES:
            return DTYPES[value["dtype_type"]]
        index = value.get("array")
        if (keys in ({"array"}, {"array", "object"}) and type(index) is int
                and 0 <= index < len(arrays) and index not in used):
            used.add(index)
            a = arrays[index]
            if value.get("object") is True and a.dtype.kind == "U":
                return a.astype(object)
            if "object" not in value:
                return a
    raise _Invalid(f"{where} holds {str(value)[:80]}, which is not a value fastmlp writes")


def _check_network(attrs):
    """The weights chain into a network of finite float32 or float64 numbers whose
    widths agree with the other attributes."""
    coefs, intercepts = attrs.get("coefs_"), attrs.get("intercepts_")
    if not (isinstance(coefs, list) and isinstance(intercepts, list) and coefs
            and len(coefs) == len(intercepts)
            and all(isinstance(a, np.ndarray) for a in coefs + intercepts)):
        raise _Invalid("coefs_ and intercepts_ must be lists of as many arrays, at least "
                       "one")
    dtype = coefs[0].dtype
    if dtype not in (np.float32, np.float64):
        raise _Invalid(f"the weights have dtype {dtype}, not float32 or float64")
    if any(a.dtype != dtype for a in coefs + intercepts):
        raise _Invalid("the weights mix dtypes")
    try:  # the shapes chain, and every value is finite: what training checks too
        _engine.check_weights(coefs, intercepts, dtype)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None
    width = coefs[-1].shape[1]
    expected = {"n_features_in_": coefs[0].shape[0], "n_outputs_": width,
                "n_layers_": len(coefs) + 1}
    for name, value in expected.items():
        if name in attrs and attrs[name] != value:
            raise _Invalid(f"{name} is {attrs[name]!r} but the weights say {value}")
    classes = attrs.get("classes_")
    if classes is not None and (not isinstance(classes, np.ndarray) or classes.ndim != 1):
        raise _Invalid("classes_ must be a 1-D array")


def load(path):
    """Read a model written by ``model.save(path)``; no code in the file is ever run.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        The model file, or a file object opened for reading bytes (``open(name,
        "rb")``, ``io.BytesIO``, a download's stream) whose content from its current
        position to its end is the model file; it is read to its end and left open.

    Returns
    -------
    Network, MLPClassifier or MLPRegressor
        The fitted estimator, with the same parameters and bit-identical weights.

    Raises
    ------
    ValueError
        When the file is not a fastmlp model file or is truncated, corrupted, of a
        newer format version, or hostile (code objects, unknown classes, arrays of
        objects, shapes that do not match, weights that do not chain, NaN weights).
    OSError
        When the file cannot be opened.
    TypeError
        When the file object is opened in text mode.

    Notes
    -----
    Memory use is bounded by the size of the file: members must be stored
    uncompressed, and each array header is checked against its member's size before
    the data is read.
    """
    if hasattr(path, "read"):
        _check_binary(path, "load")
        # the model's bytes from here to the end: a stream need not be seekable, and
        # the zip reader then sees a file that starts with the model
        data = path.read()
        name = getattr(path, "name", None)
        return _read_checked(io.BytesIO(data), len(data),
                             f"{name}" if isinstance(name, str) else "the file object")
    path = os.fspath(path)
    with open(path, "rb") as f:
        return _read_checked(f, os.fstat(f.fileno()).st_size, path)


def _read_checked(f, file_size, name):
    """_read, with every way a file can be wrong made into one ValueError."""
    try:
        return _read(f, file_size)
    except _Invalid as exc:
        raise ValueError(f"{name} is not a valid fastmlp model file: {exc}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, UnicodeDecodeError,
            RecursionError, NotImplementedError, ValueError, KeyError, TypeError,
            OverflowError, OSError) as exc:
        raise ValueError(f"{name} is not a valid fastmlp model file (truncated or "
                         f"corrupted?): {type(exc).__name__}: {exc}") from exc


def _read(f, file_size):
    with zipfile.ZipFile(f) as zf:
        members = _check_members(zf, file_size)
        if METADATA not in members:
            raise _Invalid(f"no {METADATA} member")
        raw = _read_npy(zf, members[METADATA], MAX_METADATA_BYTES)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise _Invalid(f"{METADATA} is not a byte string")
        meta = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise _Invalid(f"the metadata does not name the format {FORMAT!r}")
        version = meta.get("version")
        if type(version) is not int or version > VERSION or version < 1:
            raise _Invalid(f"format version {version!r}; this fastmlp reads versions up "
                           f"to {VERSION}")
        for key, kind in (("class", str), ("params", dict), ("attributes", dict),
                          ("n_arrays", int)):
            if not isinstance(meta.get(key), kind):
                raise _Invalid(f"the metadata lacks {key!r} (a {kind.__name__})")
        n_arrays = meta["n_arrays"]
        expected = {METADATA} | {f"array_{i}.npy" for i in range(max(n_arrays, 0))}
        if set(members) != expected:
            extra = sorted(set(members) ^ expected)[:5]
            raise _Invalid(f"the members do not match the metadata: {extra}")
        arrays = [_read_npy(zf, members[f"array_{i}.npy"]) for i in range(n_arrays)]

    table = _class_table()
    cls = table.get(meta["class"])
    if cls is None:
        raise _Invalid(f"unknown class {meta['class']!r}; fastmlp reads {sorted(table)}")
    used = set()
    params = {k: _decode(v, arrays, used, f"parameter {k!r}")
              for k, v in meta["params"].items()}
    unknown = set(params) - set(cls._get_param_names())
    if unknown:
        raise _Invalid(f"{cls.__name__} has no parameters {sorted(unknown)}")
    attrs = {k: _decode(v, arrays, used, f"attribute {k!r}")
             for k, v in meta["attributes"].items()}
    unknown = set(attrs) - set(cls._saved_attributes)
    if unknown:
        raise _Invalid(f"{cls.__name__} has no saved attributes {sorted(unknown)}")
    _check_network(attrs)
    if len(used) != len(arrays):
        raise _Invalid("arrays that no parameter or attribute refers to")

    model = cls(**params)
    try:
        model._validate_params()
    except ValueError as exc:
        raise _Invalid(f"invalid parameters: {exc}") from None
    for k, v in attrs.items():
        setattr(model, k, v)
    if hasattr(model, "_after_load"):
        model._after_load()
    return model
