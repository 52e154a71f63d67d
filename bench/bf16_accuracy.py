"""Test accuracy on Fashion-MNIST, float32 products against bfloat16 ones (issue 16).

Two networks, each trained with compute_dtype=None (float32) and "bfloat16" from the
same seeds, mean of the seeds (3 by default):
  - the course notes' 784-30-10 network (sigmoid units, quadratic cost, SGD eta=3.0,
    mini-batches of 10; see bench/seed_fashion_mnist.py), 30 epochs;
  - MLPClassifier(hidden_layer_sizes=(256,)) with scikit-learn's defaults (Adam,
    batches of 200), 20 epochs.
Prints a Markdown table (the README's) and, with --json, writes the accuracies and the
loss curves.

    python bench/bf16_accuracy.py                 # about 10 minutes on 2 cores
    python bench/bf16_accuracy.py --seeds 0 --notes-epochs 3 --mlp-epochs 2   # a look

Data: ``apt-get install dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist).
"""
import argparse
import json
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier, Network
from fastmlp.datasets import load_fashion_mnist

COMPUTE = {"float32": None, "bfloat16": "bfloat16"}


def notes_network(seed, compute_dtype, epochs):
    return Network([784, 30, 10], activation="logistic", output="logistic",
                   loss="squared_error", init="normal", sigma=1.0, solver="sgd",
                   learning_rate=3.0, momentum=0.0, batch_size=10, epochs=epochs,
                   random_state=seed, compute_dtype=compute_dtype)


def mlp_256(seed, compute_dtype, epochs):
    # tol=0: all the epochs are run (scikit-learn's default may stop early otherwise)
    return MLPClassifier(hidden_layer_sizes=(256,), max_iter=epochs, tol=0.0,
                         random_state=seed, compute_dtype=compute_dtype)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--notes-epochs", type=int, default=30)
    parser.add_argument("--mlp-epochs", type=int, default=20)
    parser.add_argument("--json", help="also write accuracies and loss curves here")
    args = parser.parse_args(argv)
    try:
        (X_train, y_train), (X_test, y_test) = load_fashion_mnist()
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    warnings.simplefilter("ignore", ConvergenceWarning)
    models = {
        f"784-30-10 sigmoid, quadratic cost, SGD eta=3, batch 10, {args.notes_epochs} "
        "epochs (Network)": (notes_network, args.notes_epochs),
        f"MLPClassifier(hidden_layer_sizes=(256,)), Adam, {args.mlp_epochs} epochs":
            (mlp_256, args.mlp_epochs),
    }
    results = {}
    for label, (make, epochs) in models.items():
        for name, compute_dtype in COMPUTE.items():
            for seed in args.seeds:
                start = time.perf_counter()
                model = make(seed, compute_dtype, epochs).fit(X_train, y_train)
                accuracy = model.score(X_test, y_test)
                results.setdefault(label, {}).setdefault(name, []).append(
                    {"seed": seed, "accuracy": accuracy,
                     "loss_curve": [float(v) for v in model.loss_curve_],
                     "seconds": time.perf_counter() - start})
                print(f"  {label} | {name} | seed {seed}: {100 * accuracy:.2f}% "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\nFashion-MNIST test accuracy (%), mean of seeds {args.seeds} "
          "(each seed's in brackets)\n")
    print("| network | float32 | bfloat16 | bfloat16 - float32 |")
    print("|---|---|---|---|")
    for label, runs in results.items():
        acc = {name: [100 * r["accuracy"] for r in rs] for name, rs in runs.items()}
        mean = {name: statistics.mean(a) for name, a in acc.items()}
        cells = [f"{mean[n]:.2f} ({', '.join(f'{a:.2f}' for a in acc[n])})" for n in COMPUTE]
        print(f"| {label} | {cells[0]} | {cells[1]} | "
              f"{mean['bfloat16'] - mean['float32']:+.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
