"""The course notes' MNIST experiment, run on Fashion-MNIST with fastmlp's Network.

The notes (shared/seeds, seed 003) train a 784-30-10 network of sigmoid units on the
quadratic cost C = 1/(2n) sum ||y(x) - a||^2 by mini-batch SGD with eta = 3.0 and
mini-batches of 10, for 30 epochs, with one-hot targets. This script does the same on
Fashion-MNIST (same shapes as MNIST: 60000 + 10000 images of 28x28, 10 classes) and
prints the test accuracy and the seconds of each epoch.

Each epoch is one ``partial_fit`` call, so its time includes the input checks a user's
call pays (about 2% here); the test accuracy is measured outside the timed part.

Usage: python bench/seed_fashion_mnist.py [--epochs N] [--dtype float32|float64]
Data: ``apt-get install dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist).
"""
import argparse
import statistics
import sys
import time

import numpy as np

from fastmlp import Network
from fastmlp.datasets import load_fashion_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs (default: 30)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        (X_train, y_train), (X_test, y_test) = load_fashion_mnist(dtype=args.dtype)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)  # it says how to install the data
        return 1

    # The notes' network: weights drawn from N(0, 1) as in their program (biases start
    # at zero here), sigmoid hidden and output units, quadratic cost, plain SGD.
    net = Network([784, 30, 10], activation="logistic", output="logistic",
                  loss="squared_error", init="normal", sigma=1.0, solver="sgd",
                  learning_rate=3.0, momentum=0.0, batch_size=10,
                  random_state=args.seed, dtype=np.dtype(args.dtype).type)
    classes = np.arange(10)
    print(f"784-30-10 sigmoid, quadratic cost, SGD eta=3.0, batch 10, {args.dtype}; "
          f"{len(X_train)} training and {len(X_test)} test images")
    seconds = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        net.partial_fit(X_train, y_train, classes=classes)
        seconds.append(time.perf_counter() - start)
        accuracy = net.score(X_test, y_test)
        print(f"epoch {epoch:2d}: test accuracy {accuracy:.4f} "
              f"({round(accuracy * len(y_test))} / {len(y_test)}), "
              f"loss {net.loss_curve_[-1]:.5f}, {seconds[-1]:.3f} s")
    print(f"seconds per epoch: median {statistics.median(seconds):.3f}, "
          f"min {min(seconds):.3f}, max {max(seconds):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
