"""Small fits as scikit-learn's gallery makes them, fastmlp against scikit-learn, on one
thread and on the default threads.

    python bench/small.py [--repeat 3] [--only sgd-adam|lbfgs|cases]

The workloads:
  sgd-adam  scikit-learn's example "Compare Stochastic learning strategies for
            MLPClassifier": 7 SGD/Adam settings on iris, digits (15 epochs), circles and
            moons (400 epochs each), MinMax-scaled: 28 fits.
  lbfgs     scikit-learn's example "Varying regularization in Multi-layer Perceptron":
            L-BFGS, hidden (10, 10), early_stopping=True, 5 alphas on moons, circles and a
            linearly separable set (60 training rows each): 15 fits.
  cases     single fits: iris sgd (400 epochs of one batch), digits adam (50 epochs of 9
            batches), moons lbfgs (100, 100), digits lbfgs (100,) (200 iterations).
Each timing is the best of --repeat runs; the contenders alternate run by run. One thread
is threadpoolctl's limit of 1 on every BLAS and OpenMP runtime in the process (fastmlp's
too); default threads is no limit. Prints seconds and ratios (scikit-learn / fastmlp; one
thread / default threads).

Then the arithmetic of the SGD/Adam example, which bounds its ratio: the flops of its
products (forward, weight gradients and deltas of every epoch the fits run, on the rows
they train on), and the seconds they take at NumPy's own one-thread float64 matmul rate,
measured in the same run, against a tenth of scikit-learn's one-thread time.
"""
import argparse
import os
import time
import warnings

# Some machines force an older OpenBLAS kernel through these; scikit-learn is measured as
# a user's machine runs it (OpenBLAS reads them when NumPy loads it, below).
UNSET = [var for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
         if os.environ.pop(var, None) is not None]

import numpy as np  # noqa: E402
from sklearn import datasets  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import fastmlp  # noqa: E402
from fastmlp._config import config_info  # noqa: E402

# The seven settings of the training-strategies example.
STRATEGIES = [
    dict(solver="sgd", learning_rate="constant", momentum=0, learning_rate_init=0.2),
    dict(solver="sgd", learning_rate="constant", momentum=0.9, nesterovs_momentum=False,
         learning_rate_init=0.2),
    dict(solver="sgd", learning_rate="constant", momentum=0.9, nesterovs_momentum=True,
         learning_rate_init=0.2),
    dict(solver="sgd", learning_rate="invscaling", momentum=0, learning_rate_init=0.2),
    dict(solver="sgd", learning_rate="invscaling", momentum=0.9, nesterovs_momentum=False,
         learning_rate_init=0.2),
    dict(solver="sgd", learning_rate="invscaling", momentum=0.9, nesterovs_momentum=True,
         learning_rate_init=0.2),
    dict(solver="adam", learning_rate_init=0.01),
]


def strategy_data():
    iris = datasets.load_iris()
    X_digits, y_digits = datasets.load_digits(return_X_y=True)
    sets = [(iris.data, iris.target), (X_digits, y_digits),
            datasets.make_circles(noise=0.2, factor=0.5, random_state=1),
            datasets.make_moons(noise=0.3, random_state=0)]
    return [(MinMaxScaler().fit_transform(X), y, 15 if i == 1 else 400)
            for i, (X, y) in enumerate(sets)]


def alpha_data():
    X, y = datasets.make_classification(n_features=2, n_redundant=0, n_informative=2,
                                        random_state=0, n_clusters_per_class=1)
    X += 2 * np.random.RandomState(2).uniform(size=X.shape)
    sets = [datasets.make_moons(noise=0.3, random_state=0),
            datasets.make_circles(noise=0.2, factor=0.5, random_state=1), (X, y)]
    out = []
    for X, y in sets:
        X_train, _, y_train, _ = train_test_split(X, y, test_size=0.4, random_state=42)
        out.append((X_train, y_train))
    return out


def sgd_adam_workload(Classifier):
    data = strategy_data()

    def run():
        for X, y, max_iter in data:
            for params in STRATEGIES:
                Classifier(random_state=0, max_iter=max_iter, **params).fit(X, y)
    return run


def lbfgs_workload(Classifier):
    data = alpha_data()

    def run():
        for X, y in data:
            for alpha in np.logspace(-1, 1, 5):
                make_pipeline(StandardScaler(), Classifier(
                    solver="lbfgs", alpha=alpha, random_state=1, max_iter=2000,
                    early_stopping=True, hidden_layer_sizes=[10, 10])).fit(X, y)
    return run


def case_workloads():
    iris = datasets.load_iris()
    Xi = MinMaxScaler().fit_transform(iris.data)
    Xd, yd = datasets.load_digits(return_X_y=True)
    Xd = Xd / 16
    Xm, ym = datasets.make_moons(noise=0.3, random_state=0)
    Xm = StandardScaler().fit_transform(Xm)
    cases = {
        "iris sgd 400 epochs": (Xi, iris.target, dict(
            solver="sgd", learning_rate_init=0.2, momentum=0.9, max_iter=400,
            n_iter_no_change=400)),
        "digits adam 50 epochs": (Xd, yd, dict(solver="adam", max_iter=50,
                                                n_iter_no_change=50)),
        "moons lbfgs (100, 100)": (Xm, ym, dict(solver="lbfgs",
                                                hidden_layer_sizes=(100, 100))),
        "digits lbfgs (100,) 200 it": (Xd, yd, dict(solver="lbfgs", max_iter=200)),
    }

    def make(Classifier, X, y, params):
        return lambda: Classifier(random_state=0, **params).fit(X, y)
    return {name: {who: make(C, X, y, p) for who, C in
                   (("scikit-learn", SkMLPClassifier), ("fastmlp", fastmlp.MLPClassifier))}
            for name, (X, y, p) in cases.items()}


def sgd_adam_flops():
    """The flops of the SGD/Adam example's products: per epoch, each layer's forward
    product and weight gradient, and the deltas of all layers but the first, on the rows
    the fit trains on (all: early_stopping is off); epochs as the fits run them."""
    total = 0
    for X, y, max_iter in strategy_data():
        for params in STRATEGIES:
            mlp = fastmlp.MLPClassifier(random_state=0, max_iter=max_iter, **params).fit(X, y)
            sizes = [X.shape[1], *mlp.hidden_layer_sizes, mlp.n_outputs_]
            io = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
            total += 2 * len(X) * (2 * sum(io) + sum(io[1:])) * mlp.n_iter_
    return total


def float64_rate(n=1024, repeat=5):
    """NumPy's one-thread float64 matmul rate (flop/s), best of repeat."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    C = np.empty((n, n))
    best = np.inf
    with threadpool_limits(limits=1):
        for _ in range(repeat + 1):
            t0 = time.perf_counter()
            np.matmul(A, B, out=C)
            best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


# Seconds of rest before each run: a BLAS or OpenMP thread pool goes on spinning for a
# while after its last call, and would take the cores of the next contender's run.
SETTLE = 0.25


def best_times(runs, repeat):
    """{(contender, threads): best seconds}, the contenders alternating run by run."""
    best = {}
    for _ in range(repeat):
        for (who, threads), run in runs.items():
            time.sleep(SETTLE)
            with threadpool_limits(limits=1 if threads == "1 thread" else None):
                t0 = time.perf_counter()
                run()
                seconds = time.perf_counter() - t0
            best[who, threads] = min(best.get((who, threads), np.inf), seconds)
    return best


def report(name, runs, repeat):
    best = best_times(runs, repeat)
    sk1, fm1 = best["scikit-learn", "1 thread"], best["fastmlp", "1 thread"]
    skd, fmd = best["scikit-learn", "default"], best["fastmlp", "default"]
    print(f"{name:28} {sk1:9.3f} {fm1:9.3f} {sk1 / fm1:7.1f}x {skd:9.3f} {fmd:9.3f} "
          f"{skd / fmd:7.1f}x {fm1 / fmd:9.2f}")
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["sgd-adam", "lbfgs", "cases"])
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    info = config_info()
    print(f"CPU: {info['CPU']}, {os.cpu_count()} logical CPUs; fastmlp {info['fastmlp']} "
          f"on {info['isa']}; scikit-learn {info['scikit-learn']}"
          + (f" ({', '.join(UNSET)} unset)" if UNSET else ""))
    print(f"{'workload':28} {'sk 1 thr':>9} {'fm 1 thr':>9} {'sk/fm':>8} {'sk dflt':>9} "
          f"{'fm dflt':>9} {'sk/fm':>8} {'fm 1/dflt':>9}")
    threads = ("1 thread", "default")
    workloads = {}
    if args.only in (None, "sgd-adam"):
        workloads["gallery sgd/adam (28 fits)"] = {
            who: sgd_adam_workload(C) for who, C in
            (("scikit-learn", SkMLPClassifier), ("fastmlp", fastmlp.MLPClassifier))}
    if args.only in (None, "lbfgs"):
        workloads["gallery lbfgs (15 fits)"] = {
            who: lbfgs_workload(C) for who, C in
            (("scikit-learn", SkMLPClassifier), ("fastmlp", fastmlp.MLPClassifier))}
    if args.only in (None, "cases"):
        workloads.update(case_workloads())
    for name, by_who in workloads.items():
        runs = {(who, t): run for who, run in by_who.items() for t in threads}
        best = report(name, runs, args.repeat)
        if name.startswith("gallery sgd/adam"):
            sk1, fm1 = best["scikit-learn", "1 thread"], best["fastmlp", "1 thread"]
    if args.only in (None, "sgd-adam"):
        flops, rate = sgd_adam_flops(), float64_rate()
        floor = flops / rate
        print(f"SGD/Adam example's arithmetic: {flops / 1e9:.2f} GFLOP of float64 products; "
              f"at NumPy's one-thread float64 rate here ({rate / 1e9:.0f} GFLOP/s) "
              f"{floor:.3f} s, against fastmlp's {fm1:.3f} s ({floor / fm1:.0%} of that "
              f"rate overall); 10x scikit-learn's one thread is {sk1 / 10:.3f} s, which "
              f"asks for {floor / (sk1 / 10):.0%} of it")


if __name__ == "__main__":
    main()
