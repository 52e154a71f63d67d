"""Faults during training: divergence, Ctrl-C, threads, determinism, memory growth."""
import copy
import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier, MLPRegressor, Network, _kernels

rng = np.random.default_rng(0)
X = rng.standard_normal((300, 5))
Y_CLASS = (X[:, 0] > 0).astype(int)
Y_REG = 100 * X[:, 0]


def _quiet_fit(model, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **kw)


def _weights(model):
    return [a.copy() for a in model.coefs_ + model.intercepts_]


def _same_weights(a, b):
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y)
                                    for x, y in zip(a, b))


def _run_python(code, env=None, timeout=120):
    """Run code in a fresh interpreter; its last stdout line is JSON, returned decoded."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- divergence ------------------------------------------------------------------------

@pytest.mark.parametrize("make, y", [
    (lambda epochs: MLPClassifier(hidden_layer_sizes=(8,), solver="sgd",
                                  learning_rate_init=1e8, max_iter=epochs, random_state=0),
     Y_CLASS),
    (lambda epochs: MLPRegressor(hidden_layer_sizes=(8,), solver="sgd",
                                 learning_rate_init=0.5, max_iter=epochs, random_state=0),
     Y_REG),
    (lambda epochs: Network([5, 8, 2], learning_rate=100.0, epochs=epochs, random_state=0),
     Y_CLASS),
], ids=["mlp-classifier", "mlp-regressor", "network"])
def test_divergence_stops_with_the_last_finite_weights(make, y):
    """A huge learning rate: fit raises a ValueError that says it diverged, and the
    model holds exactly the weights of the epochs before the one that blew up."""
    model = make(50)
    with pytest.raises(ValueError, match="diverged"):
        _quiet_fit(model, X, y)
    done = len(model.loss_curve_)
    assert 1 <= done < 50
    assert all(np.isfinite(a).all() for a in _weights(model))
    assert np.isfinite(model.loss_curve_).all()
    assert _same_weights(_weights(model), _weights(_quiet_fit(make(done), X, y)))
    assert np.isfinite(model.predict(X[:5]).astype(float)).all()


@pytest.mark.parametrize("model", [
    MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
    Network([5, 8, 1], output="identity", epochs=3, dtype=np.float64, random_state=0),
], ids=["mlp-regressor", "network"])
def test_diverging_partial_fit_leaves_the_model_as_it_was(model):
    _quiet_fit(model, X, Y_REG / 100)
    before, curve = _weights(model), list(model.loss_curve_)
    with pytest.raises(ValueError, match="diverged"):
        model.partial_fit(X * 1e300, Y_REG)
    assert _same_weights(_weights(model), before)
    assert model.loss_curve_ == curve
    model.partial_fit(X, Y_REG / 100)  # and it trains on
    assert len(model.loss_curve_) == len(curve) + 1


def test_diverging_partial_fit_keeps_n_iter():
    model = _quiet_fit(MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0), X,
                       Y_REG / 100)
    with pytest.raises(ValueError, match="diverged"):
        model.partial_fit(X * 1e300, Y_REG)
    assert model.n_iter_ == 3


# ---- Ctrl-C ----------------------------------------------------------------------------

CTRL_C_SCRIPT = """
import json, os, signal, threading, time, warnings
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from fastmlp import MLPClassifier, Network

rng = np.random.default_rng(0)
X = rng.standard_normal((1_000_000, 20), dtype=np.float32)
y = (X[:, 0] > 0).astype(int)
X_fit, y_fit = X[:200_000], y[:200_000]
report = {}

def interrupted(call, delay=1.0):
    '''Run call() with a SIGINT sent after delay seconds; returns (how it ended, the
    seconds from the signal to the end of the call, the call's duration).'''
    sent = []
    def fire():
        time.sleep(delay)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=fire, daemon=True).start()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
            how = "warned" if any("interrupted" in str(w.message) for w in caught) else "finished"
        except KeyboardInterrupt:
            how = "KeyboardInterrupt"
    end = time.perf_counter()
    return how, end - sent[0] if sent else None, end - start

def weights(m):
    return [a.copy() for a in m.coefs_ + m.intercepts_]

def same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))

def check_fit(name, make, epochs_of):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        make(1).fit(X_fit, y_fit)
        epoch = time.perf_counter() - t0
    model = make(1000)
    # about two and a half epochs in (at least a second), however fast this machine is
    how, latency, _ = interrupted(lambda: model.fit(X_fit, y_fit), max(1.0, 2.5 * epoch))
    done = epochs_of(model)
    usable = bool(np.isin(model.predict(X[:100]), [0, 1]).all())
    finite = all(np.isfinite(a).all() for a in weights(model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        same_as_serial = done >= 1 and same(weights(model), weights(make(done).fit(X_fit, y_fit)))
        model.set_params(**{"epochs" if "epochs" in model.get_params() else "max_iter": 1})
        refit = model.fit(X_fit[:1000], y_fit[:1000]) is model
    report[name] = dict(how=how, latency=latency, epochs_done=done, usable=usable,
                        finite=finite, same_as_serial=same_as_serial, refit=refit)

def check_partial_fit(name, model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.partial_fit(X[:1000], y[:1000], classes=[0, 1])
        t0 = time.perf_counter()
        model.partial_fit(X, y)  # one whole epoch, to know how long one takes here
        full_epoch = time.perf_counter() - t0
    before = weights(model)
    how, latency, duration = interrupted(lambda: model.partial_fit(X, y), full_epoch / 3)
    report[name] = dict(how=how, latency=latency, duration=duration,
                        full_epoch=full_epoch,
                        unchanged=same(weights(model), before),
                        usable=bool(np.isin(model.predict(X[:100]), [0, 1]).all()),
                        trains_on=model.partial_fit(X[:1000], y[:1000]) is model)

check_fit("network.fit", lambda e: Network([20, 32, 2], batch_size=16, epochs=e,
                                            random_state=0), lambda m: m.n_iter_)
check_fit("mlp.fit", lambda e: MLPClassifier(hidden_layer_sizes=(32,), batch_size=16,
                                             max_iter=e, tol=0, n_iter_no_change=10**6,
                                             random_state=0), lambda m: len(m.loss_curve_))
check_partial_fit("network.partial_fit", Network([20, 32, 2], batch_size=16, random_state=0))
check_partial_fit("mlp.partial_fit", MLPClassifier(hidden_layer_sizes=(32,), batch_size=16,
                                                   random_state=0))
print(json.dumps(report))
"""


@pytest.mark.slow  # timed: a busy machine can delay the signal's handling
def test_ctrl_c_stops_within_a_batch_and_keeps_the_last_epoch():
    """SIGINT a few epochs into a long fit, and a third of the way into a long partial_fit
    (in a subprocess): the call stops long before its epoch would end, with KeyboardInterrupt (Network) or scikit-learn's
    "Training interrupted by user." warning (MLPClassifier); the model predicts, its
    weights are those of the last completed epoch (bit-identical to a fit of that many
    epochs) or, for partial_fit, those it had before; and training works again."""
    report = _run_python(CTRL_C_SCRIPT)
    print(json.dumps(report, indent=1))
    assert report["network.fit"]["how"] == "KeyboardInterrupt"
    # the drop-in keeps scikit-learn's behaviour: it warns "Training interrupted by user."
    # and returns the model with the weights of its last completed epoch
    assert report["mlp.fit"]["how"] == "warned"
    for name in ("network.fit", "mlp.fit"):
        r = report[name]
        assert r["latency"] < 0.5, (name, r)
        assert r["usable"] and r["finite"] and r["refit"], (name, r)
        assert r["epochs_done"] >= 1 and r["same_as_serial"], (name, r)
    for name in ("network.partial_fit", "mlp.partial_fit"):
        r = report[name]
        assert r["how"] == ("KeyboardInterrupt" if name.startswith("network")
                            else "warned"), (name, r)
        # it stopped at the next batch, not at the end of the epoch
        assert r["latency"] < 0.5 and r["duration"] < 0.8 * r["full_epoch"], (name, r)
        assert r["unchanged"] and r["usable"] and r["trains_on"], (name, r)


# The same guarantees without a clock: the kernels' test hook stops the epoch before a
# given mini-batch exactly as a Ctrl-C handled there would.

@pytest.fixture(autouse=True)
def python_sigint_handler():
    """The Ctrl-C tests raise SIGINT in this process as a terminal would: they need the
    handler Python installs at start, which a process started with SIGINT ignored (a
    background job of a shell without job control, nohup) does not have; fastmlp then
    rightly leaves SIGINT alone."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def interrupt_after():
    try:
        yield _kernels.interrupt_after_batches
    finally:
        _kernels.interrupt_after_batches(-1)


HOOK_X = rng.standard_normal((1000, 5))
HOOK_Y = (HOOK_X[:, 0] > 0).astype(int)
BATCHES = 63  # 1000 rows in batches of 16


def _stopped_as_by_ctrl_c(call, name):
    """call(HOOK_X, HOOK_Y) under the interrupt hook stops as Ctrl-C stops it: Network
    with KeyboardInterrupt, the drop-ins with scikit-learn's warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if name == "network":
            with pytest.raises(KeyboardInterrupt):
                call(HOOK_X, HOOK_Y)
        else:
            call(HOOK_X, HOOK_Y)
            assert any("Training interrupted by user" in str(w.message) for w in caught)


@pytest.mark.parametrize("name", ["network", "mlp-classifier", "mlp-classifier-adam"])
def test_interrupt_in_the_third_epoch_keeps_the_second(name, interrupt_after):
    """Interrupted ten batches into its third epoch, fit stops there: Network with
    KeyboardInterrupt, the drop-in with scikit-learn's warning; the weights are those of
    two whole epochs (bit-identical to a fit of two epochs), n_iter_ and the loss curve
    count two, and the model predicts and trains on."""
    def make(epochs):
        if name == "network":
            return Network([5, 16, 2], batch_size=16, epochs=epochs, random_state=0)
        return MLPClassifier(hidden_layer_sizes=(16,), batch_size=16, max_iter=epochs,
                             solver="adam" if name.endswith("adam") else "sgd", tol=0,
                             n_iter_no_change=10**6, random_state=0)

    model = make(50)
    interrupt_after(2 * BATCHES + 10)
    _stopped_as_by_ctrl_c(model.fit, name)
    two = _quiet_fit(make(2), HOOK_X, HOOK_Y)
    assert _same_weights(_weights(model), _weights(two))
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2
    np.testing.assert_array_equal(model.loss_curve_, two.loss_curve_)
    np.testing.assert_array_equal(model.predict(HOOK_X), two.predict(HOOK_X))
    assert model.partial_fit(HOOK_X, HOOK_Y) is model


@pytest.mark.parametrize("name", ["network", "mlp-classifier"])
def test_interrupted_partial_fit_leaves_the_model_as_it_was(name, interrupt_after):
    model = (Network([5, 16, 2], batch_size=16, random_state=0) if name == "network"
             else MLPClassifier(hidden_layer_sizes=(16,), batch_size=16, random_state=0))
    model.partial_fit(HOOK_X, HOOK_Y, classes=[0, 1])
    before, n_iter = _weights(model), model.n_iter_
    interrupt_after(BATCHES // 3)
    _stopped_as_by_ctrl_c(model.partial_fit, name)
    assert _same_weights(_weights(model), before) and model.n_iter_ == n_iter
    assert model.partial_fit(HOOK_X, HOOK_Y) is model
    assert not _same_weights(_weights(model), before)


# A Ctrl-C that Python delivers in the estimator's own code between two blocks of epochs
# (after the kernels updated the weights, before the loss curve records it): signal.
# raise_signal right after a block returns, where Python runs the SIGINT handler at once.

def _ctrl_c_after_block(monkeypatch, block):
    """SIGINT when RowOrders.keep is called the block-th time (right after that block of
    epochs returned from the kernels); blocks of 3 epochs (BLOCK_ROWS)."""
    from fastmlp import _engine

    monkeypatch.setattr(_engine, "BLOCK_ROWS", 3 * len(HOOK_X))
    monkeypatch.setattr(_engine, "FIRST_BLOCK_EPOCHS", 3)
    keep, calls = _engine.RowOrders.keep, []

    def keep_then_ctrl_c(self, k):
        keep(self, k)
        calls.append(k)
        if len(calls) == block:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(_engine.RowOrders, "keep", keep_then_ctrl_c)
    return calls


@pytest.mark.parametrize("name", ["network", "mlp-classifier"])
def test_ctrl_c_between_blocks_keeps_weights_and_curve_together(name, monkeypatch):
    """A Ctrl-C after the second block of 3 epochs: the fit stops before the third
    block's first mini-batch, and the weights, n_iter_ and the loss curve all count
    6 epochs (the weights bit-identical to a fit of 6). Raised where Python delivers it,
    it would leave the weights of 6 epochs with a curve of 3."""
    def make(epochs):
        if name == "network":
            return Network([5, 16, 2], batch_size=16, epochs=epochs, random_state=0)
        return MLPClassifier(hidden_layer_sizes=(16,), batch_size=16, max_iter=epochs,
                             solver="sgd", tol=0, n_iter_no_change=10**6, random_state=0)

    six = _quiet_fit(make(6), HOOK_X, HOOK_Y)
    calls = _ctrl_c_after_block(monkeypatch, 2)
    model = make(50)
    _stopped_as_by_ctrl_c(model.fit, name)
    assert calls[:2] == [3, 3]
    assert model.n_iter_ == 6 and len(model.loss_curve_) == 6
    assert _same_weights(_weights(model), _weights(six))
    np.testing.assert_array_equal(model.loss_curve_, six.loss_curve_)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_after_the_last_block_is_raised_once_the_fit_is_recorded(monkeypatch):
    """A Ctrl-C after the last block: Network.fit raises KeyboardInterrupt with every
    epoch recorded (not before the curve is)."""
    _ctrl_c_after_block(monkeypatch, 2)
    model = Network([5, 16, 2], batch_size=16, epochs=6, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        model.fit(HOOK_X, HOOK_Y)
    assert model.n_iter_ == 6 and len(model.loss_curve_) == 6
    six = Network([5, 16, 2], batch_size=16, epochs=6, random_state=0).fit(HOOK_X, HOOK_Y)
    assert _same_weights(_weights(model), _weights(six))


def test_ctrl_c_in_a_full_batch_fit_stops_before_the_next_iteration(monkeypatch):
    """rprop (no mini-batches to poll): a Ctrl-C during the third iteration stops the
    fit before that iteration's weights are copied in, with two recorded."""
    from fastmlp import _engine

    iteration, calls = _engine.full_batch_iteration, []

    def then_ctrl_c(*args, **kwargs):
        loss = iteration(*args, **kwargs)
        calls.append(loss)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)
        return loss

    monkeypatch.setattr(_engine, "full_batch_iteration", then_ctrl_c)
    model = Network([5, 16, 2], solver="rprop", epochs=20, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        model.fit(HOOK_X, HOOK_Y)
    monkeypatch.setattr(_engine, "full_batch_iteration", iteration)
    two = Network([5, 16, 2], solver="rprop", epochs=2, random_state=0).fit(HOOK_X, HOOK_Y)
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2
    assert _same_weights(_weights(model), _weights(two))


def test_a_noted_ctrl_c_stops_only_the_main_threads_epochs():
    """The Ctrl-C noted for the main thread's fit does not stop a fit in another thread
    (Python never interrupts one), and stays noted for the main thread."""
    model = Network([5, 16, 2], batch_size=16, random_state=0)
    model.partial_fit(HOOK_X, HOOK_Y, classes=[0, 1])
    _kernels.hold_sigint(True)
    try:
        _kernels.note_sigint(signal.SIGINT, None)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(model.partial_fit, HOOK_X, HOOK_Y).result()
        assert model.n_iter_ == 2
        assert _kernels.take_sigint()
    finally:
        _kernels.hold_sigint(False)


# ---- threads ---------------------------------------------------------------------------

class Probe:
    """A Python thread that notes the time every millisecond or so: it can only run
    while no other thread holds the GIL, so the longest gap between its notes while a
    call runs is the longest the call held the GIL."""

    def __init__(self):
        self.ticks = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.ticks.append(time.perf_counter())
            time.sleep(0.001)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def longest_gap(self, start, end):
        t = np.array([start] + [x for x in self.ticks if start < x < end] + [end])
        return float(np.diff(t).max())


BIG_X = rng.standard_normal((300_000, 20)).astype(np.float32)
BIG_Y = (BIG_X[:, 0] > 0).astype(int)


def _timed(call):
    start = time.perf_counter()
    result = call()
    return start, time.perf_counter(), result


@pytest.mark.slow  # timed: a ratio of gaps, which a busy machine stretches
def test_gil_is_released_while_two_threads_fit():
    """Two Network.partial_fit calls (one long C epoch each) in two threads: they overlap
    in time, a third Python thread keeps running meanwhile, and each result equals the
    same training done serially."""
    models = [Network([20, 64, 2], batch_size=8, random_state=s) for s in (0, 1)]
    for m in models:
        m.partial_fit(BIG_X[:100], BIG_Y[:100], classes=[0, 1])
    serial = copy.deepcopy(models)
    for m in serial:
        m.partial_fit(BIG_X, BIG_Y)
    with Probe() as probe, ThreadPoolExecutor(2) as pool:
        spans = list(pool.map(lambda m: _timed(lambda: m.partial_fit(BIG_X, BIG_Y)), models))
    (s0, e0, _), (s1, e1, _) = spans
    overlap = min(e0, e1) - max(s0, s1)
    gap = probe.longest_gap(max(s0, s1), min(e0, e1))
    print(f"fits {e0 - s0:.2f} s and {e1 - s1:.2f} s, overlapping {overlap:.2f} s; the "
          f"probe thread's longest wait meanwhile {gap * 1000:.0f} ms")
    assert overlap > 0.5 * min(e0 - s0, e1 - s1)
    assert gap < 0.25 * overlap
    for m, s in zip(models, serial):
        assert _same_weights(_weights(m), _weights(s))


@pytest.mark.slow  # timed, as above
def test_gil_is_released_during_predict_and_eight_threads_agree():
    model = Network([20, 256, 2], epochs=1, random_state=0).fit(BIG_X[:2000], BIG_Y[:2000])
    want = model.predict_proba(BIG_X)
    with Probe() as probe:
        start, end, got = _timed(lambda: model.predict_proba(BIG_X))
    gap = probe.longest_gap(start, end)
    print(f"predict_proba {end - start:.2f} s; the probe's longest wait {gap * 1000:.0f} ms")
    assert np.array_equal(got, want)
    assert gap < 0.5 * (end - start)
    X_small = BIG_X[:20_000]
    clf = _quiet_fit(MLPClassifier(hidden_layer_sizes=(64,), max_iter=2, random_state=0),
                     BIG_X[:2000], BIG_Y[:2000])
    for m in (model, clf):
        serial = m.predict_proba(X_small)
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: m.predict_proba(X_small), range(16)))
        assert all(np.array_equal(r, serial) for r in results)


# ---- determinism -----------------------------------------------------------------------

DETERMINISM_SCRIPT = """
import json, sys, warnings
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from fastmlp import MLPClassifier, MLPRegressor, Network
warnings.simplefilter("ignore", ConvergenceWarning)
rng = np.random.default_rng(0)
X = rng.standard_normal((400, 100))
y = (X[:, :3].sum(1) > 0).astype(int)
# 100 x 700 = 70,000 weights: big enough for the parallel GEMM and the parallel updates
models = {f"mlp-{s}": lambda s=s: MLPClassifier(hidden_layer_sizes=(700,), solver=s,
                                                 max_iter=2, random_state=0)
          for s in ("sgd", "adam", "lbfgs")}
models["mlp-regressor-adam"] = lambda: MLPRegressor(hidden_layer_sizes=(700,), max_iter=2,
                                                    random_state=0)
models.update({f"network-{s}": lambda s=s: Network([100, 700, 2], solver=s, epochs=2,
                                                    batch_size=200, random_state=0)
               for s in ("sgd", "adam")})
out = {}
for name, make in models.items():
    runs = []
    for _ in range(2):
        target = X @ np.ones(100) if "regressor" in name else y
        m = make().fit(X, target)
        runs.append(b"".join(a.tobytes() for a in m.coefs_ + m.intercepts_)
                    + m.predict(X).tobytes())
    out[name] = dict(same_in_process=runs[0] == runs[1], digest=__import__("hashlib")
                     .sha256(runs[0]).hexdigest())
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def fits_by_thread_count():
    """The digests of DETERMINISM_SCRIPT's fits under OMP_NUM_THREADS=1 and 2."""
    return [_run_python(DETERMINISM_SCRIPT, env={"OMP_NUM_THREADS": str(n)})
            for n in (1, 2)]


@pytest.mark.parametrize("name", [
    "mlp-sgd", "mlp-adam", "mlp-regressor-adam", "network-sgd", "network-adam",
    "mlp-lbfgs",
])
def test_bit_identical_across_runs_and_thread_counts(fits_by_thread_count, name):
    """Same random_state and data: bit-identical weights and predictions in one process
    and across OMP_NUM_THREADS=1 and 2, for every solver of every estimator."""
    one, two = fits_by_thread_count
    assert one[name]["same_in_process"] and two[name]["same_in_process"]
    assert one[name]["digest"] == two[name]["digest"]


# ---- memory ----------------------------------------------------------------------------

def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow  # a thousand cycles, and a bound on memory that a busy heap can cross
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_a_thousand_fit_predict_cycles_do_not_grow_memory():
    Xs, ys = X[:100], Y_CLASS[:100]

    def cycle():
        net = Network([5, 16, 2], epochs=2, random_state=0).fit(Xs, ys)
        clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=2, random_state=0)
        _quiet_fit(clf, Xs, ys)
        return net.predict(Xs), clf.predict_proba(Xs)

    for _ in range(50):  # warm up: imports, caches, the kernels' thread buffers
        cycle()
    gc.collect()
    before = _rss_bytes()
    for _ in range(1000):
        cycle()
    gc.collect()
    growth = _rss_bytes() - before
    print(f"RSS growth over 1,000 fit/predict cycles: {growth / 2**20:.2f} MiB")
    assert growth < 10 * 2**20
