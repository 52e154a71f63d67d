"""The training loss per epoch of float32 and bfloat16 products, side by side: an
MLPClassifier(hidden_layer_sizes=(256,)) with Adam on Fashion-MNIST (the README's figure).

    python bench/bf16_loss_curve.py [--epochs 20] [--out docs/bf16_loss_curve.png]
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

import fastmlp
from fastmlp._config import config_info
from fastmlp.datasets import load_fashion_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/bf16_loss_curve.png")
    args = parser.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    warnings.simplefilter("ignore", ConvergenceWarning)
    (X, y), (X_test, y_test) = load_fashion_mnist(dtype=np.float32)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    print(f"CPU: {config_info()['CPU']}; kernels: {config_info()['isa']}")
    for compute, style in ((None, "-"), ("bfloat16", "--")):
        model = fastmlp.MLPClassifier((256,), max_iter=args.epochs,
                                      n_iter_no_change=args.epochs, compute_dtype=compute,
                                      random_state=args.seed)
        t0 = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - t0
        name = "float32" if compute is None else compute
        accuracy = model.score(X_test, y_test)
        print(f"{name:9} final training loss {model.loss_curve_[-1]:.4f}, test accuracy "
              f"{accuracy:.4f}, {seconds:.1f} s")
        epochs = np.arange(1, len(model.loss_curve_) + 1)
        ax.plot(epochs, model.loss_curve_, style,
                label=f"{name} products (test accuracy {accuracy:.4f})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_title("MLPClassifier((256,)), Adam, Fashion-MNIST")
    ax.legend()
    fig.savefig(args.out, dpi=100)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
