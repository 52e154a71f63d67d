"""fastmlp's solvers on the small data sets of scikit-learn's gallery example "Compare
Stochastic learning strategies for MLPClassifier" (iris, digits, circles, moons,
MinMax-scaled): the final training loss and the time of sgd, adam, lbfgs and rprop.

    python bench/solvers.py [--repeat 3] [--max-iter 400]

Every fit is MLPClassifier(hidden_layer_sizes=(100,), random_state=0, max_iter=...)
with each solver's defaults (sgd as the example's best: learning_rate_init=0.2,
momentum=0.9, Nesterov; adam: learning_rate_init=0.01 as the example), stopping by
max_iter or each solver's tol rule (and rprop once more without it). The loss is measured the same way for all: the log
loss of the final weights on the training rows (without the L2 term), so that the
stochastic solvers' running epoch mean does not flatter them. Time: the best of
--repeat fits, the solvers alternating fit by fit; iterations: epochs for sgd and adam,
iterations for lbfgs and rprop (each one full-batch gradient, an epoch's arithmetic).
Prints a Markdown table.
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss

import fastmlp
from small import strategy_data  # the example's four data sets

SOLVERS = {
    "sgd": dict(solver="sgd", learning_rate_init=0.2, momentum=0.9),
    "adam": dict(solver="adam", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs"),
    "rprop": dict(solver="rprop"),
    # its loss falls unevenly at times: without the tol rule, all max_iter iterations
    "rprop, max_iter": dict(solver="rprop", n_iter_no_change=None),
}
NAMES = ["iris", "digits", "circles", "moons"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=400)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    rows = []
    for name, (X, y, _) in zip(NAMES, strategy_data()):
        best, fitted = {}, {}
        for _ in range(args.repeat):
            for solver, params in SOLVERS.items():
                if params.get("n_iter_no_change", 0) is None:
                    params = dict(params, n_iter_no_change=args.max_iter)
                model = fastmlp.MLPClassifier(random_state=0, max_iter=args.max_iter,
                                              **params)
                t0 = time.perf_counter()
                model.fit(X, y)
                seconds = time.perf_counter() - t0
                best[solver] = min(best.get(solver, np.inf), seconds)
                fitted[solver] = model
        for solver, model in fitted.items():
            loss = log_loss(y, model.predict_proba(X))
            rows.append((name, solver, loss, model.score(X, y), model.n_iter_, best[solver]))
    print("| data set | solver | training log loss | training accuracy | iterations "
          "| seconds |")
    print("|---|---|---:|---:|---:|---:|")
    for name, solver, loss, accuracy, n_iter, seconds in rows:
        print(f"| {name} | {solver} | {loss:.2g} | {accuracy:.3f} | {n_iter} "
              f"| {seconds:.3f} |")


if __name__ == "__main__":
    main()
