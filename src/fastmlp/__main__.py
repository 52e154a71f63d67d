"""`python -m fastmlp`: train a Network on a data set and report test accuracy and time.

Both data sets are trained as the course notes teach: one hidden layer, inputs scaled to
[0, 1], He initialisation for the relu units, softmax output with the cross-entropy, and
mini-batch SGD with a fixed learning rate for a number of epochs.

- ``--data digits`` (the default): scikit-learn's digits (1797 8x8 images, shipped with
  scikit-learn, pixels / 16), 64-100-10, SGD eta = 0.1 with momentum 0.9 (a small data
  set: 42 batches of 32 per epoch), 20 epochs.
- ``--data fashion-mnist``: Fashion-MNIST (``apt-get install dataset-fashion-mnist``,
  pixels / 255), 784-100-10 with `Network`'s own defaults: plain SGD eta = 0.1, batches
  of 32, 10 epochs (about 0.87 test accuracy).

``--plot PATH`` saves the loss curve (needs matplotlib). Every option is checked before
the data is loaded: a bad one is one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import os
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
    """Fashion-MNIST's own split (60000 + 10000 images), pixels scaled to [0, 1]."""
    from .datasets import load_fashion_mnist

    return load_fashion_mnist()


# data set -> (loader, default training settings)
DATA = {
    "digits": (load_digits_split, dict(hidden=[100], epochs=20, learning_rate=0.1,
                                       momentum=0.9, batch_size=32)),
    "fashion-mnist": (load_fashion_mnist_split, dict(hidden=[100], epochs=10,
                                                     learning_rate=0.1, momentum=0.0,
                                                     batch_size=32)),
}


def _defaults(setting):
    """The default of a setting, per data set when they differ ("20 on digits, ...")."""
    shown = {name: " ".join(map(str, v)) if isinstance(v, list) else str(v)
             for name, (_, settings) in DATA.items() for v in [settings[setting]]}
    if len(set(shown.values())) == 1:
        return next(iter(shown.values()))
    return ", ".join(f"{value} on {name}" for name, value in shown.items())


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """Any bad option: one line on stderr, exit status 2 (argparse's usual status)."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _check_plot_path(path):
    """Why the loss curve cannot be saved to path, or None when it can: checked before
    training, so that a typo does not cost a training run."""
    try:
        import matplotlib
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return "--plot needs matplotlib: pip install 'fastmlp[plot]'"
    extension = os.path.splitext(path)[1].lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if extension and extension not in formats:
        return (f"--plot {path}: matplotlib cannot write .{extension} files; use one of "
                f"{', '.join(sorted(formats))}")
    if not extension and matplotlib.rcParams["savefig.format"] not in formats:
        return f"--plot {path}: give the file an extension, such as .png"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"--plot {path}: the folder {folder} does not exist"
    if os.path.isdir(path):
        return f"--plot {path} is a folder; give a file name, such as {path}/curve.png"
    existed = os.path.exists(path)
    try:  # the truth about permissions (os.access is not, for root or ACLs)
        with open(path, "ab"):
            pass
    except OSError as exc:
        return f"--plot {path}: cannot write there ({exc.strerror})"
    if not existed:
        os.remove(path)
    return None


def parse_args(argv):
    parser = _Parser(
        prog="python -m fastmlp",
        description="Train a fastmlp Network (one hidden layer of relu units, softmax "
                    "output, mini-batch SGD) and report its test accuracy and training "
                    "time.")
    parser.add_argument("--data", choices=sorted(DATA), default="digits",
                        help="the data set (default: digits, shipped with scikit-learn)")
    parser.add_argument("--epochs", type=int, metavar="N",
                        help=f"training epochs (default: {_defaults('epochs')})")
    parser.add_argument("--hidden", type=int, nargs="+", metavar="WIDTH",
                        help=f"hidden layer widths (default: {_defaults('hidden')})")
    parser.add_argument("--learning-rate", type=float, metavar="ETA",
                        help=f"SGD's step size (default: {_defaults('learning_rate')})")
    parser.add_argument("--momentum", type=float,
                        help=f"SGD's momentum, 0 to 1 (default: {_defaults('momentum')})")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help=f"rows per mini-batch (default: {_defaults('batch_size')})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--plot", metavar="PATH",
                        help="save the loss curve to PATH (png, pdf, svg; needs matplotlib)")
    args = parser.parse_args(argv)
    for name, value in DATA[args.data][1].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if min(args.hidden) < 1:
        parser.error(f"--hidden widths must be positive, got {args.hidden}")
    if not args.learning_rate > 0:
        parser.error(f"--learning-rate must be positive, got {args.learning_rate}")
    if not 0 <= args.momentum <= 1:
        parser.error(f"--momentum must be in [0, 1], got {args.momentum}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.plot is not None:
        problem = _check_plot_path(args.plot)
        if problem:
            parser.error(problem)
    return args


def main(argv=None):
    args = parse_args(argv)
    load, _ = DATA[args.data]
    try:
        (X_train, y_train), (X_test, y_test) = load(args.seed)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    n_classes = len(set(y_train.tolist()))
    sizes = [X_train.shape[1], *args.hidden, n_classes]
    model = Network(sizes, activation="relu", output="softmax", solver="sgd",
                    learning_rate=args.learning_rate, momentum=args.momentum,
                    batch_size=args.batch_size, epochs=args.epochs,
                    random_state=args.seed, progress=True)
    print(f"{args.data}: {len(X_train)} training and {len(X_test)} test rows; "
          f"network {'-'.join(map(str, sizes))}, {args.epochs} epochs of SGD "
          f"(eta {args.learning_rate:g}, momentum {args.momentum:g}, batches of "
          f"{args.batch_size})", flush=True)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    accuracy = model.score(X_test, y_test)
    print(f"training loss per epoch: {' '.join(f'{loss:.4f}' for loss in model.loss_curve_)}")
    print(f"test accuracy: {accuracy:.4f}")
    print(f"training time: {seconds:.2f} s ({1000 * seconds / args.epochs:.1f} ms per epoch)")
    if args.plot:
        from .plot import loss_curve

        loss_curve(model).figure.savefig(args.plot)
        print(f"loss curve saved to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
