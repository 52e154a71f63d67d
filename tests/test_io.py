"""Model files: exact round trips of every estimator, and files that are truncated,
corrupted, oversized or hostile are refused with a ValueError (no code ever runs)."""
import io
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sklearn
from packaging.version import Version
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import fastmlp
from fastmlp import MLPClassifier, MLPRegressor, Network

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 4))
LABELS = np.array(["cat", "dog", "emu"])[rng.integers(0, 3, 60)]
MULTILABEL = (rng.random((60, 3)) < 0.4).astype(int)
TARGETS = X @ rng.normal(size=(4, 2))


def _fit(model, y, X=X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # of the short fits
        return model.fit(X, y)


# name: (a function returning a fitted model, its training targets)
CASES = {
    "network-classifier": (lambda: _fit(Network([4, 5, 3], epochs=3, random_state=0),
                                        LABELS), LABELS),
    "network-multilabel": (lambda: _fit(
        Network([4, 5, 3], output="logistic", epochs=3, random_state=0), MULTILABEL),
        MULTILABEL),
    "network-regressor-float64": (lambda: _fit(
        Network((4, 6, 2), output="identity", dtype=np.float64, epochs=3,
                random_state=1), TARGETS), TARGETS),
    "mlp-classifier-strings": (lambda: _fit(
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0), LABELS),
        LABELS),
    "mlp-classifier-object-labels": (lambda: _fit(
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0),
        LABELS.astype(object)), LABELS.astype(object)),
    "mlp-classifier-multilabel": (lambda: _fit(
        MLPClassifier(hidden_layer_sizes=(5, 4), solver="sgd", max_iter=5,
                      random_state=0), MULTILABEL), MULTILABEL),
    "mlp-classifier-early-stopping": (lambda: _fit(
        MLPClassifier(hidden_layer_sizes=(5,), early_stopping=True, max_iter=5,
                      random_state=0), LABELS), None),
    "mlp-regressor": (lambda: _fit(
        MLPRegressor(hidden_layer_sizes=(6,), max_iter=5, random_state=0), TARGETS),
        TARGETS),
    "mlp-classifier-class-weight-rprop": (lambda: _fit(
        MLPClassifier(hidden_layer_sizes=(5,), solver="rprop", max_iter=5, random_state=0,
                      class_weight={"cat": 2.0, "dog": 1.0, "emu": 0.5}, eta_plus=1.3),
        LABELS), None),  # rprop has no partial_fit
    "network-class-weight-rprop": (lambda: _fit(
        Network([4, 5, 3], solver="rprop", epochs=3, random_state=0,
                class_weight={"cat": 3, "emu": 0.5}, step_max=10.0), LABELS), LABELS),
    "mlp-regressor-lbfgs-float32": (lambda: _fit(
        MLPRegressor(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=5, random_state=0),
        TARGETS[:, 0], X.astype(np.float32)), TARGETS[:, 0]),
}


def _same(a, b):
    """Equal values of the same type; arrays bit-identical with the same dtype."""
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(u, v) for u, v in zip(a, b)))
    return type(a) is type(b) and (a == b or (a != a and b != b))


# scikit-learn's own MLPClassifier fails early stopping with string labels before 1.9
# (np.isnan on the decoded validation predictions): scikit-learn issue #33760, fixed by
# its PR #33774. Strict, so that the case is noticed when the floor rises past the fix.
UPSTREAM_BUGS = {
    "mlp-classifier-early-stopping": pytest.mark.xfail(
        Version(sklearn.__version__) < Version("1.9"), raises=TypeError, strict=True,
        reason="scikit-learn < 1.9: early stopping with string labels "
               "(scikit-learn issue #33760, fixed by PR #33774)"),
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=UPSTREAM_BUGS.get(c, ()))
                                  for c in CASES])
# the loaded L-BFGS regressor's partial_fit stops at max_iter=5, as the original did
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_round_trip_is_exact(case, tmp_path):
    make, y = CASES[case]
    model = make()
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastmlp.load(path)
    assert type(loaded) is type(model)
    assert _same(loaded.get_params(), model.get_params())
    for name in type(model)._saved_attributes:
        assert hasattr(loaded, name) == hasattr(model, name), name
        if hasattr(model, name):
            assert _same(getattr(loaded, name), getattr(model, name)), name
    assert _same(loaded.predict(X), model.predict(X))
    if hasattr(model, "predict_proba"):
        assert _same(loaded.predict_proba(X), model.predict_proba(X))
    if y is not None:  # the loaded model trains on (partial_fit refuses early stopping)
        loaded.partial_fit(X, y)
        assert loaded.predict(X).shape == model.predict(X).shape
        assert all(np.isfinite(c).all() for c in loaded.coefs_)


@pytest.mark.parametrize("case", ["network-classifier", "mlp-classifier-strings"])
def test_pickle_keeps_working(case):
    model = CASES[case][0]()
    clone = pickle.loads(pickle.dumps(model))
    assert _same(clone.predict(X), model.predict(X))
    assert all(_same(a, b) for a, b in zip(clone.coefs_, model.coefs_))


def test_save_refuses_what_it_cannot_store(tmp_path):
    path = tmp_path / "m.npz"
    with pytest.raises(NotFittedError):
        fastmlp.MLPClassifier().save(path)
    model = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2,
                          random_state=np.random.RandomState(0))
    _fit(model, LABELS)
    with pytest.raises(TypeError, match="random_state.*RandomState.*pickle"):
        model.save(path)
    model.set_params(random_state=0)
    model.classes_ = np.array([1, "dog", 2.5], dtype=object)
    with pytest.raises(TypeError, match="classes_.*float, int, str.*pickle"):
        model.save(path)

    class MyMLP(MLPRegressor):
        pass

    mine = MyMLP(hidden_layer_sizes=(3,), max_iter=2)
    _fit(mine, TARGETS[:, 0])
    with pytest.raises(TypeError, match="MyMLP.*pickle"):
        fastmlp._io.save(mine, path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


class _WriteOnly:
    """A stream that can only be written to (no seek, no tell), as a pipe or a socket."""

    def __init__(self):
        self.chunks = []

    def write(self, data):
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self):
        pass


class _ReadOnly:
    """A stream that can only be read (no seek), as an HTTP response."""

    def __init__(self, data):
        self.data = data

    def read(self, n=-1):
        data, self.data = (self.data, b"") if n < 0 else (self.data[:n], self.data[n:])
        return data


@pytest.mark.parametrize("case", ["network-classifier", "mlp-classifier-strings",
                                  "mlp-regressor"])
def test_save_and_load_take_binary_file_objects(case, tmp_path):
    model = CASES[case][0]()
    path = tmp_path / "model.npz"
    model.save(path)
    on_disk = path.read_bytes()

    buffer = io.BytesIO()
    model.save(buffer)
    assert buffer.getvalue() == on_disk and not buffer.closed
    buffer = io.BytesIO(b"head")  # written at the current position, read from there
    buffer.seek(4)
    model.save(buffer)
    buffer.seek(4)
    loaded = fastmlp.load(buffer)
    assert _same(loaded.predict(X), model.predict(X)) and not buffer.closed

    with open(tmp_path / "opened.npz", "wb") as f:
        model.save(f)
    with open(tmp_path / "opened.npz", "rb") as f:
        assert _same(fastmlp.load(f).predict(X), model.predict(X))

    stream = _WriteOnly()
    model.save(stream)
    loaded = fastmlp.load(_ReadOnly(b"".join(stream.chunks)))
    assert _same(loaded.predict(X), model.predict(X))


def test_text_files_and_bad_streams_are_refused(saved, tmp_path):
    model, blob = saved
    with open(tmp_path / "m.txt", "w") as f, pytest.raises(TypeError, match="binary mode"):
        model.save(f)
    (tmp_path / "m.npz").write_bytes(blob)
    with open(tmp_path / "m.npz") as f, pytest.raises(TypeError, match="binary mode"):
        fastmlp.load(f)
    with pytest.raises(ValueError, match="the file object is not a valid fastmlp model"):
        fastmlp.load(io.BytesIO(blob[:-10]))
    with open(tmp_path / "cut.npz", "wb") as f:
        f.write(blob[:100])
    with open(tmp_path / "cut.npz", "rb") as f, pytest.raises(ValueError, match="cut.npz"):
        fastmlp.load(f)


# ---- files of earlier versions ----------------------------------------------------------

# tests/fixtures/models/<commit>/ holds files written by fastmlp at that commit
# (make_model_files.py there) and what the models predicted then.
OLD_FILES = sorted((Path(__file__).parent / "fixtures" / "models").glob("*/*.expected.npz"))


@pytest.mark.parametrize("expected_file", OLD_FILES, ids=[
    f"{p.parent.name}-{p.name.removesuffix('.expected.npz')}" for p in OLD_FILES])
def test_files_of_earlier_versions_load_and_predict_the_same(expected_file):
    model = fastmlp.load(str(expected_file).replace(".expected.npz", ".npz"))
    expected = np.load(expected_file)
    X_old, labels = expected["X"], model.predict(expected["X"])
    if labels.dtype.kind in "f":  # regressors: another ISA may round differently
        np.testing.assert_allclose(labels, expected["predict"], rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(labels, expected["predict"])
    if "predict_proba" in expected:
        want = expected["predict_proba"]
        if expected_file.name.startswith("network-logistic-multiclass"):
            # earlier versions gave the logistic units' values; rows now sum to one
            want = want / want.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(model.predict_proba(X_old), want, rtol=1e-5, atol=1e-7)


def test_the_earlier_versions_files_are_there():
    assert len(OLD_FILES) >= 12  # two versions of six cases: the glob finds them


# ---- hostile and damaged files --------------------------------------------------------

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small saved classifier: (the model, the file's bytes)."""
    model = _fit(Network([4, 3, 3], epochs=2, random_state=0), LABELS)
    path = tmp_path_factory.mktemp("io") / "model.npz"
    model.save(path)
    return model, path.read_bytes()


def _members(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _npy(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=True)
    return buf.getvalue()


def _metadata(blob):
    raw = np.lib.format.read_array(io.BytesIO(_members(blob)["metadata.npy"]))
    return json.loads(raw.tobytes())


def _zip(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _with(blob, meta=None, **arrays):
    """The file blob with its metadata replaced by meta (a function of the metadata
    dict) and members array_<i> replaced by the given arrays (None: removed)."""
    members = _members(blob)
    if meta is not None:
        text = json.dumps(meta(_metadata(blob))).encode()
        members["metadata.npy"] = _npy(np.frombuffer(text, np.uint8))
    for name, a in arrays.items():
        if a is None:
            del members[f"{name}.npy"]
        else:
            members[f"{name}.npy"] = a if isinstance(a, bytes) else _npy(a)
    return _zip(members)


def _load(tmp_path, blob):
    path = tmp_path / "hostile.npz"
    path.write_bytes(blob)
    return fastmlp.load(path)


def test_the_fixture_file_loads(saved, tmp_path):
    model, blob = saved
    assert _same(_load(tmp_path, blob).predict(X), model.predict(X))
    assert _same(_load(tmp_path, _with(blob, meta=lambda m: m)).predict(X), model.predict(X))


def test_truncated_files_are_refused(saved, tmp_path):
    _, blob = saved
    for end in sorted({0, 1, 4, 30, 100, len(blob) // 3, len(blob) // 2, len(blob) - 100,
                       len(blob) - 23, len(blob) - 1}):
        with pytest.raises(ValueError, match="not a valid fastmlp model file"):
            _load(tmp_path, blob[:end])


def test_flipped_bytes_are_refused_or_harmless(saved, tmp_path):
    """Every 5th byte flipped in turn: the file is refused with a ValueError, or (for a
    byte no reader looks at, such as a timestamp) loads into the very same model: the
    same parameters and every saved attribute (weights, loss curve, classes, ...) the
    same."""
    model, blob = saved
    refused = 0
    for pos in range(0, len(blob), 5):
        damaged = bytearray(blob)
        damaged[pos] ^= 0xFF
        try:
            loaded = _load(tmp_path, bytes(damaged))
        except ValueError as exc:
            assert "not a valid fastmlp model file" in str(exc)
            refused += 1
            continue
        assert type(loaded) is type(model), pos
        assert _same(loaded.get_params(), model.get_params()), pos
        for name in type(model)._saved_attributes:
            assert hasattr(loaded, name) == hasattr(model, name), (pos, name)
            if hasattr(model, name):
                assert _same(getattr(loaded, name), getattr(model, name)), (pos, name)
    assert refused > len(blob) // 10  # the CRCs and the checks do catch most damage


def test_pickled_members_never_run(saved, tmp_path):
    """An object array (NumPy stores it as a pickle) whose unpickling would create a
    directory: refused before anything is unpickled."""
    _, blob = saved
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            import os
            return os.mkdir, (str(marker),)

    evil = np.array([Payload()], dtype=object)
    with pytest.raises(ValueError, match="dtype object"):
        _load(tmp_path, _with(blob, array_0=evil))
    with pytest.raises(ValueError, match="not a valid"):
        _load(tmp_path, _with(blob, array_0=pickle.dumps(Payload())))
    meta = _members(blob)
    meta["metadata.npy"] = pickle.dumps(Payload())
    with pytest.raises(ValueError, match="not a valid"):
        _load(tmp_path, _zip(meta))
    assert not marker.exists()


def test_oversized_and_compressed_members_are_refused(saved, tmp_path):
    _, blob = saved
    # a zip bomb: 64 MiB of zeros deflated to a few kB
    bomb = _members(blob)
    bomb["array_0.npy"] = _npy(np.zeros((8 << 20,)))
    with pytest.raises(ValueError, match="compressed"):
        _load(tmp_path, _zip(bomb, zipfile.ZIP_DEFLATED))
    # a header announcing 10**12 rows over a few bytes: refused before any allocation
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 3)})
    with pytest.raises(ValueError, match=r"shape \(1000000000000, 3\)"):
        _load(tmp_path, _with(blob, array_0=header.getvalue() + b"\0" * 24))
    # a central directory that claims a member far larger than the file
    big = bytearray(blob)
    entry = big.index(b"PK\x01\x02")  # the first central directory entry
    big[entry + 20:entry + 28] = (2**31).to_bytes(4, "little") * 2  # both sizes
    with pytest.raises(ValueError, match="not a valid"):
        _load(tmp_path, bytes(big))


@pytest.mark.parametrize("change, message", [
    (lambda m: {**m, "class": "os.system"}, "unknown class 'os.system'"),
    (lambda m: {**m, "class": "sklearn.pipeline.Pipeline"}, "unknown class"),
    (lambda m: {**m, "format": "something-else"}, "does not name the format"),
    (lambda m: {**m, "version": 99}, "format version 99"),
    (lambda m: {k: v for k, v in m.items() if k != "params"}, "lacks 'params'"),
    (lambda m: {k: v for k, v in m.items() if k != "attributes"}, "lacks 'attributes'"),
    (lambda m: {**m, "params": {**m["params"], "evil": 1}}, "no parameters \\['evil'\\]"),
    (lambda m: {**m, "params": {**m["params"], "activation": "os.system"}},
     "invalid parameters"),
    (lambda m: {**m, "params": {**m["params"], "dtype": {"dtype_type": "object"}}},
     "parameter 'dtype'"),
    (lambda m: {**m, "attributes": {**m["attributes"], "__class__": 1}},
     "no saved attributes"),
    (lambda m: {**m, "attributes": {k: v for k, v in m["attributes"].items()
                                    if k != "coefs_"}}, "coefs_ and intercepts_"),
    (lambda m: {**m, "attributes": {**m["attributes"], "n_features_in_": 7}},
     "n_features_in_ is 7 but the weights say 4"),
    (lambda m: {**m, "attributes": {**m["attributes"], "n_iter_": {"pickle": "x"}}},
     "attribute 'n_iter_'"),
    (lambda m: {**m, "n_arrays": m["n_arrays"] + 1}, "members do not match"),
])
def test_hostile_metadata_is_refused(saved, tmp_path, change, message):
    _, blob = saved
    with pytest.raises(ValueError, match=message):
        _load(tmp_path, _with(blob, meta=change))


def test_inconsistent_arrays_are_refused(saved, tmp_path):
    model, blob = saved
    index = {id(a): i for i, a in enumerate(model.coefs_ + model.intercepts_)}
    assert len(index) == 4  # coefs_ are array_0, array_1; intercepts_ array_2, array_3
    W0 = model.coefs_[0]
    for arrays, message in [
        ({"array_1": np.zeros((5, 3), W0.dtype)}, "do not chain"),
        ({"array_0": np.full_like(W0, np.nan)}, "NaN or inf"),
        ({"array_0": W0.astype(np.float64)}, "mix dtypes"),
        ({"array_0": W0.astype(np.int32)}, "dtype int32"),
        ({"array_0": W0.astype(np.complex64)}, "dtype complex64"),
        ({"array_0": np.zeros((4, 3), [("a", "<f4")])}, "dtype"),
        ({"array_0": None}, "members do not match"),
        ({"array_9": W0}, "members do not match"),
    ]:
        with pytest.raises(ValueError, match=message):
            _load(tmp_path, _with(blob, **arrays))


def test_files_that_are_not_models_are_refused(tmp_path):
    for blob in [b"", b"not a zip at all", pickle.dumps({"coefs_": []}), _npy(np.ones(3)),
                 _zip({"metadata.npy": _npy(np.frombuffer(b"{not json", np.uint8))}),
                 _zip({"metadata.npy": _npy(np.frombuffer(b"[" * 100000, np.uint8))}),
                 _zip({"metadata.npy": _npy(np.ones(3))})]:
        with pytest.raises(ValueError, match="not a valid fastmlp model file"):
            _load(tmp_path, blob)
    with pytest.raises(FileNotFoundError):
        fastmlp.load(tmp_path / "missing.npz")


def test_a_file_names_the_oldest_version_that_reads_it(tmp_path):
    """Version 2 adds dict parameters (class_weight): a file without one stays version 1,
    which earlier fastmlp versions read."""
    for case, version in [("mlp-regressor", 1), ("mlp-classifier-class-weight-rprop", 2),
                          ("network-class-weight-rprop", 2)]:
        path = tmp_path / f"{case}.npz"
        CASES[case][0]().save(path)
        with np.load(path, allow_pickle=False) as members:
            meta = json.loads(members["metadata"].tobytes().decode("utf-8"))
        assert meta["version"] == version, case
