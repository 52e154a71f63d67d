"""Does dropout help where a network overfits? 5,000 Fashion-MNIST training rows, a
784-1024-1024-10 MLPClassifier (Adam, batches of 128, a fixed number of epochs), with
dropout 0 and 0.5 on both hidden layers; test accuracy on the 10,000 test rows, mean
over three seeds.

    python bench/dropout.py [--epochs 30] [--seeds 0 1 2]
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
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    (X, y), (X_test, y_test) = load_fashion_mnist(dtype=np.float32)
    X, y = X[:args.rows], y[:args.rows]
    print(f"CPU: {config_info()['CPU']}; {args.rows} training rows, 784-1024-1024-10, "
          f"Adam, {args.epochs} epochs")
    print(f"{'dropout':>8} {'train acc':>10} {'test acc (mean of seeds)':>26} {'seconds':>8}")
    for rate in (0.0, 0.5):
        train, test, seconds = [], [], []
        for seed in args.seeds:
            model = fastmlp.MLPClassifier((1024, 1024), batch_size=128, max_iter=args.epochs,
                                          n_iter_no_change=args.epochs, dropout=rate,
                                          random_state=seed)
            t0 = time.perf_counter()
            model.fit(X, y)
            seconds.append(time.perf_counter() - t0)
            train.append(model.score(X, y))
            test.append(model.score(X_test, y_test))
        print(f"{rate:8.1f} {np.mean(train):10.4f} {np.mean(test):10.4f} "
              f"({', '.join(f'{a:.4f}' for a in test)}) {np.mean(seconds):8.1f}")


if __name__ == "__main__":
    main()
