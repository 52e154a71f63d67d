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

Usage: python bench/fashion_default.py [--max-iter N] [--seed S] [--dtype float64]
                                      [--only fastmlp|sklearn]
Data: ``apt-get install dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist).
"""
import argparse
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
    parser.add_argument("--seed", type=int, default=0, help="random_state of both")
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

    print(f"MLPClassifier(max_iter={args.max_iter}, random_state={args.seed}), "
          f"Fashion-MNIST {X_train.dtype}: {len(X_train)} training, {len(X_test)} test")
    print(f"{'':8s} {'fit s':>8s} {'epochs':>6s} {'s/epoch':>8s} {'test acc':>8s}")
    results = {}
    for name, cls in CONTENDERS.items():
        if args.only not in (None, name):
            continue
        est = cls(max_iter=args.max_iter, random_state=args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            est.fit(X_train, y_train)
            seconds = time.perf_counter() - start
        accuracy = est.score(X_test, y_test)
        results[name] = (seconds, accuracy)
        print(f"{name:8s} {seconds:8.1f} {est.n_iter_:6d} {seconds / est.n_iter_:8.3f} "
              f"{accuracy:8.4f}", flush=True)
    if len(results) == 2:
        (fm_s, fm_acc), (sk_s, sk_acc) = results["fastmlp"], results["sklearn"]
        print(f"fastmlp is {sk_s / fm_s:.1f}x faster; accuracy difference "
              f"{100 * (fm_acc - sk_acc):+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
