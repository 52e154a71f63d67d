"""`python -m fastmlp`: train a Network on a data set and report test accuracy and time.

By default it trains on scikit-learn's digits (1797 8x8 images, shipped with
scikit-learn): 64-100-10 with relu hidden units and softmax output, SGD with momentum.
``--data fashion-mnist`` trains 784-100-10 on Fashion-MNIST (``apt-get install
dataset-fashion-mnist``). ``--plot PATH`` saves the loss curve (needs matplotlib).
"""
from __future__ import annotations

import argparse
import sys
import time

from . import Network


def load_digits_split(seed):
    """Digits scaled to [0, 1], split 75/25 with the classes in proportion."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.25, stratify=y, random_state=seed)
    return (X_train, y_train), (X_test, y_test)


def load_fashion_mnist_split(seed):
    from .datasets import load_fashion_mnist

    return load_fashion_mnist()


DATA = {"digits": load_digits_split, "fashion-mnist": load_fashion_mnist_split}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m fastmlp",
        description="Train a fastmlp Network and report its test accuracy and training time.")
    parser.add_argument("--data", choices=sorted(DATA), default="digits",
                        help="the data set (default: digits, shipped with scikit-learn)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default: 20)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[100], metavar="WIDTH",
                        help="hidden layer widths (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--plot", metavar="PATH",
                        help="save the loss curve to PATH (png, pdf, svg; needs matplotlib)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or min(args.hidden) < 1:
        parser.error("--epochs and --hidden widths must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        (X_train, y_train), (X_test, y_test) = DATA[args.data](args.seed)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    n_classes = len(set(y_train.tolist()))
    sizes = [X_train.shape[1], *args.hidden, n_classes]
    model = Network(sizes, activation="relu", output="softmax", learning_rate=0.1,
                    momentum=0.9, batch_size=32, epochs=args.epochs,
                    random_state=args.seed, progress=True)
    print(f"{args.data}: {len(X_train)} training and {len(X_test)} test rows; "
          f"network {'-'.join(map(str, sizes))}, {args.epochs} epochs")
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    accuracy = model.score(X_test, y_test)
    print(f"test accuracy: {accuracy:.4f}")
    print(f"training time: {seconds:.2f} s ({1000 * seconds / args.epochs:.1f} ms per epoch)")
    if args.plot:
        try:
            from .plot import loss_curve
        except ImportError as exc:
            print(f"error: cannot plot ({exc}); pip install 'fastmlp[plot]'",
                  file=sys.stderr)
            return 1
        loss_curve(model).figure.savefig(args.plot)
        print(f"loss curve saved to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
