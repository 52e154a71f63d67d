"""MLPClassifier() with default parameters on Fashion-MNIST: fastmlp beside scikit-learn.

Both fit the same float32 data (60000 training images, pixels in [0, 1]) with the
default parameters (100 relu units, Adam, batches of 200, up to 200 epochs, stopping
after 10 epochs without improvement), the same random_state (the only parameter set,
so that both start from the same weights and draw the same batches), and report the
fit time, the epochs run and the test accuracy on the 10000 test images. The full run
takes scikit-learn about 6 minutes here; --max-iter shortens both.

In float32 the two runs agree for the first epochs (loss curves to about 1e-8) and
then drift apart: Adam divides by the root of tiny second moments, which magnifies
rounding differences, so the final accuracies differ as much as two seeds do. The same
happens between two scikit-learn runs whose BLAS uses a different number of threads.
(In float64 the runs stay equal to about 1e-15: tests/test_mlp_equivalence.py.)

With several seeds (``--seed 0 1 2 3``) it fits each seed in turn and ends with the
mean and spread of the accuracy differences: one seed's difference is as noisy as the
difference between two seeds, the mean over several is what compares the two.

Usage: python bench/fashion_default.py [--max-iter N] [--seed S [S ...]] [--dtype float64]
                                      [--only fastmlp|sklearn]
Data: ``apt-get install dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist).
"""
import argparse
import math
import statistics
import sys
import time
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier

from fastmlp import MLPClassifier
from fastmlp.datasets import load_fashion_mnist

CONTENDERS = {"fastmlp": MLPClassifier, "sklearn": SklearnMLPClassifier}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=200,
                        help="epochs at most (default: 200, scikit-learn's default)")
    parser.add_argument("--seed", type=int, nargs="+", default=[0],
                        help="random_state of both; several seeds are fitted in turn")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="dtype of the images (float64: the two compute the same)")
    parser.add_argument("--only", choices=sorted(CONTENDERS),
                        help="run one contender only")
    args = parser.parse_args(argv)

    try:
        (X_train, y_train), (X_test, y_test) = load_fashion_mnist(dtype=args.dtype)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)  # it says how to install the data
        return 1

    print(f"MLPClassifier(max_iter={args.max_iter}), Fashion-MNIST {X_train.dtype}: "
          f"{len(X_train)} training, {len(X_test)} test")
    print(f"{'seed':>4s} {'':8s} {'fit s':>8s} {'epochs':>6s} {'s/epoch':>8s} {'test acc':>8s}")
    differences = []
    for seed in args.seed:
        results = {}
        for name, cls in CONTENDERS.items():
            if args.only not in (None, name):
                continue
            est = cls(max_iter=args.max_iter, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                start = time.perf_counter()
                est.fit(X_train, y_train)
                seconds = time.perf_counter() - start
            accuracy = est.score(X_test, y_test)
            results[name] = (seconds, accuracy)
            print(f"{seed:4d} {name:8s} {seconds:8.1f} {est.n_iter_:6d} "
                  f"{seconds / est.n_iter_:8.3f} {accuracy:8.4f}", flush=True)
        if len(results) == 2:
            (fm_s, fm_acc), (sk_s, sk_acc) = results["fastmlp"], results["sklearn"]
            differences.append(100 * (fm_acc - sk_acc))
            print(f"{seed:4d} fastmlp is {sk_s / fm_s:.1f}x faster; accuracy difference "
                  f"{differences[-1]:+.2f} points", flush=True)
    if len(differences) > 1:
        mean = statistics.mean(differences)
        sd = statistics.stdev(differences)
        print(f"accuracy difference over {len(differences)} seeds: mean {mean:+.2f} points, "
              f"standard deviation {sd:.2f}, standard error "
              f"{sd / math.sqrt(len(differences)):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
