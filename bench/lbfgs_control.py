"""Long L-BFGS fits: fastmlp against scikit-learn, and scikit-learn against itself.

The fits of scikit-learn's gallery example "Varying regularization in Multi-layer
Perceptron" (plot_mlp_alpha.py): MLPClassifier(solver="lbfgs", alpha=a, random_state=1,
max_iter=2000, early_stopping=True, hidden_layer_sizes=[10, 10]) after a StandardScaler,
for five alphas (logspace(-1, 1, 5)) on its three data sets (moons, circles, linearly
separable), 60% of each for training. Each fit runs with scikit-learn with its BLAS on one
thread and on two, with scikit-learn on the same rows in reverse order (the controls: the
same code and the same problem, other summation orders), and with fastmlp on one and on
two OpenMP threads; the script prints n_iter_ and loss_ of each, then for each pair of
runs how many fits end at another iteration and how far apart their losses end.

A long L-BFGS fit amplifies the last bits of rounding: its line search takes other steps
once two runs differ in the last bit, so the fits end at other iterations and losses.
Where scikit-learn's own runs already end apart, fastmlp's differing from them is the
same effect, not different arithmetic. (On the 2-core AMD EPYC development machine,
OpenBLAS runs these small products on one thread whatever its setting: the BLAS threads
change nothing there, the row order does.) fastmlp's results do not depend on its
thread count (its sums are split over output tiles only).

Usage: python bench/lbfgs_control.py
"""
import sys
import warnings

import numpy as np
from sklearn.datasets import make_circles, make_classification, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fastmlp import MLPClassifier


def gallery_data():
    """The example's three data sets, as it makes them."""
    X, y = make_classification(n_features=2, n_redundant=0, n_informative=2,
                               random_state=0, n_clusters_per_class=1)
    X += 2 * np.random.RandomState(2).uniform(size=X.shape)
    return {"moons": make_moons(noise=0.3, random_state=0),
            "circles": make_circles(noise=0.2, factor=0.5, random_state=1),
            "linear": (X, y)}


# name: (estimator class, threadpoolctl's user_api whose threads are set)
RUNS = {"sklearn": (SklearnMLPClassifier, "blas"), "fastmlp": (MLPClassifier, "openmp")}


def fit(cls, user_api, threads, X, y, alpha):
    with threadpool_limits(limits=threads, user_api=user_api), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls(solver="lbfgs", alpha=alpha, random_state=1, max_iter=2000,
                   early_stopping=True, hidden_layer_sizes=[10, 10]).fit(X, y)


def main():
    print("n_iter_ and loss_ of each fit. sk1/sk2: scikit-learn with 1/2 BLAS threads; "
          "sk-rev: scikit-learn, rows reversed; fm1/fm2: fastmlp with 1/2 OpenMP threads")
    columns = ["sk1", "sk2", "sk-rev", "fm1", "fm2"]
    print(f"{'data':8} {'alpha':>6} | " + " | ".join(f"{c:>17}" for c in columns))
    # pairs of columns compared: (what, first, second)
    pairs = [("scikit-learn, 1 and 2 BLAS threads", 0, 1),
             ("scikit-learn, rows in order and reversed", 0, 2),
             ("fastmlp and scikit-learn", 0, 3),
             ("fastmlp, 1 and 2 threads", 3, 4)]
    other_n_iter = {what: 0 for what, _, _ in pairs}
    loss_apart = {what: 0.0 for what, _, _ in pairs}
    for name, (X, y) in gallery_data().items():
        X_train, _, y_train, _ = train_test_split(X, y, test_size=0.4, random_state=42)
        X_train = StandardScaler().fit_transform(X_train)
        for alpha in np.logspace(-1, 1, 5):
            sk, sk_api = RUNS["sklearn"]
            fm, fm_api = RUNS["fastmlp"]
            fits = [fit(sk, sk_api, 1, X_train, y_train, alpha),
                    fit(sk, sk_api, 2, X_train, y_train, alpha),
                    fit(sk, sk_api, 1, X_train[::-1], y_train[::-1], alpha),
                    fit(fm, fm_api, 1, X_train, y_train, alpha),
                    fit(fm, fm_api, 2, X_train, y_train, alpha)]
            print(f"{name:8} {alpha:6.3f} | "
                  + " | ".join(f"{f.n_iter_:5d} {f.loss_:.9f}" for f in fits))
            for what, i, j in pairs:
                a, b = fits[i], fits[j]
                other_n_iter[what] += a.n_iter_ != b.n_iter_
                loss_apart[what] = max(loss_apart[what], abs(a.loss_ - b.loss_) / a.loss_)
    for what, _, _ in pairs:
        print(f"{what}: {other_n_iter[what]} of 15 fits end at another iteration; "
              f"loss_ apart by up to {loss_apart[what]:.1e} (relative)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
