"""The first calls of a fresh thread, where the thread governor learns what one thread
costs: the seconds of each of a loop of predict_proba calls on the 60,000 Fashion-MNIST
training rows (compare.py's predict configuration, 784-256-10), and of an L-BFGS fit on
them, with what the governor ran each way (units on one thread, on all).

    python bench/first_calls.py [--calls 12] [--compute bfloat16] [--lbfgs-iter 15]

The governor runs the third unit of each kind and size on one thread (its first timing)
and the eighth as a trial; a large predict or loss-and-gradient call that falls on such a
unit gives it only its first rows (csrc/network.inc), so no call runs whole at the speed
of one thread. Each part runs in a new thread, whose governor record starts empty.
"""
import argparse
import threading
import time
import warnings

import numpy as np

import compare
from fastmlp import MLPClassifier, _kernels
from fastmlp._config import config_info

PREDICT, GRAD = 2, 1


def in_new_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.update(value=fn()))
    t.start()
    t.join()
    return out["value"]


def predict_calls(X, y, calls, compute):
    cfg = compare.CONFIGS["predict"]
    sizes = compare.layer_sizes(cfg, X, y)
    model = MLPClassifier(cfg.hidden, random_state=0, compute_dtype=compute)
    model.partial_fit(X[:200], y[:200], classes=np.unique(y))
    model.coefs_, model.intercepts_ = compare.init_weights(sizes, X.dtype)
    flops = 2 * len(X) * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    def run():
        rows = []
        for _ in range(calls):
            time.sleep(0.05)
            t = time.perf_counter()
            model.predict_proba(X)
            rows.append((time.perf_counter() - t,
                         _kernels.governor_stats(PREDICT, flops)["runs"]))
        return rows
    return in_new_thread(run)


def lbfgs_fit(X, y, iterations, compute):
    flops = 6 * len(X) * (X.shape[1] * 256 + 256 * 10)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MLPClassifier((256,), solver="lbfgs", max_iter=iterations,
                                  random_state=0, compute_dtype=compute)
            t = time.perf_counter()
            model.fit(X, y)
            return time.perf_counter() - t, _kernels.governor_stats(GRAD, flops)["runs"]
    return in_new_thread(run)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--compute", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--lbfgs-iter", type=int, default=15)
    args = parser.parse_args()
    compute = None if args.compute == "float32" else "bfloat16"
    X, y = compare.load_data("fashion", np.dtype(np.float32))
    info = config_info()
    print(f"CPU: {info['CPU']}; fastmlp on {info['isa']}, {info['threads']} threads",
          flush=True)
    print(f"predict_proba, 60,000 x 784 -> 256 -> 10, {args.compute} products")
    print(" call  seconds  units so far (one thread, all)")
    previous = (0, 0)
    for i, (seconds, runs) in enumerate(predict_calls(X, y, args.calls, compute), 1):
        mark = "  one thread learned here" if runs[0] > previous[0] else ""
        print(f"{i:5d}  {seconds:7.4f}  {runs}{mark}")
        previous = runs
    seconds, runs = lbfgs_fit(X, y, args.lbfgs_iter, compute)
    print(f"L-BFGS fit, 784 -> 256 -> 10, {args.lbfgs_iter} iterations: {seconds:.3f} s; "
          f"loss-and-gradient units (one thread, all): {runs}")


if __name__ == "__main__":
    main()
