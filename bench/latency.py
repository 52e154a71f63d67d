"""Prediction latency as a server sees it: one call at a time, on a fitted 64-100-10
MLPClassifier (the digits), fastmlp against scikit-learn and ONNX Runtime (the model
fastmlp.onnx exports, float32), for 1, 10, 100 and 10,000 rows; also fastmlp's and
scikit-learn's MLPRegressor (64-100-1) and fastmlp's Network (64-100-10).

    python bench/latency.py [--calls 3000]

Prints the median and the quickest microseconds per call of each (the contenders take
turns in blocks of calls, so a busy moment slows them alike) and the ratios of the
medians to fastmlp's.
"""
import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

import fastmlp

SETTLE = 0.1  # seconds of rest before each block of calls


def contenders(X, y):
    warnings.simplefilter("ignore", ConvergenceWarning)
    fm = fastmlp.MLPClassifier(random_state=0, max_iter=50).fit(X, y)
    sk = SkMLPClassifier(random_state=0, max_iter=50).fit(X, y)
    # the regressor on the same inputs (target: the digit), and the notes' Network
    fm_reg = fastmlp.MLPRegressor(random_state=0, max_iter=50).fit(X, y.astype(np.float32))
    sk_reg = SkMLPRegressor(random_state=0, max_iter=50).fit(X, y.astype(np.float32))
    net = fastmlp.Network([X.shape[1], 100, 10], epochs=5, random_state=0).fit(X, y)
    out = {"fastmlp predict": fm.predict, "fastmlp predict_proba": fm.predict_proba,
           "scikit-learn predict": sk.predict, "scikit-learn predict_proba": sk.predict_proba,
           "fastmlp regressor predict": fm_reg.predict,
           "scikit-learn regressor predict": sk_reg.predict,
           "fastmlp Network predict": net.predict,
           "fastmlp Network predict_proba": net.predict_proba}
    try:
        import onnxruntime as ort

        from fastmlp.onnx import to_onnx
    except ImportError:
        print("(onnxruntime or skl2onnx not installed: pip install 'fastmlp[onnx]')")
        return out
    session = ort.InferenceSession(to_onnx(fm, X[:1].astype(np.float32)).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    label, proba = (o.name for o in session.get_outputs()[:2])
    out["onnxruntime predict"] = lambda A: session.run([label], {name: A})[0]
    out["onnxruntime predict_proba"] = lambda A: session.run([proba], {name: A})[0]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args(argv)
    X, y = load_digits(return_X_y=True)
    X32 = (X / 16).astype(np.float32)
    calls = contenders(X32, y)
    rows_list = (1, 10, 100, 10_000)
    big = np.ascontiguousarray(np.tile(X32, (6, 1))[:10_000])
    print(f"{'rows':>6} {'call':28} {'median us':>10} {'min us':>9} {'/ fastmlp':>9}")
    for rows in rows_list:
        A = np.ascontiguousarray(big[:rows])
        n = max(20, args.calls // max(1, rows // 100))
        times = {k: [] for k in calls}
        for f in calls.values():  # warm up
            f(A)
        # blocks of calls in turn, with a rest before each: a runtime's worker threads
        # spin for a while after a call (ONNX Runtime's, OpenMP's) and would otherwise
        # take the core the next contender runs on
        block = max(1, n // 10)
        for _ in range(10):
            for k, f in calls.items():
                time.sleep(SETTLE)
                for _ in range(block):
                    t0 = time.perf_counter()
                    f(A)
                    times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
        for k, v in times.items():
            ref = "fastmlp " + ("regressor " if "regressor" in k else "") + k.split()[-1]
            print(f"{rows:>6} {k:28} {med[k]:10.1f} {min(v) * 1e6:9.1f} "
                  f"{med[k] / med[ref]:9.2f}")


if __name__ == "__main__":
    main()
