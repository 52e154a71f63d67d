"""fastmlp against scikit-learn's MLPClassifier and PyTorch (CPU) on the same work.

fastmlp and scikit-learn are timed through the same call a user makes, on the same
estimator class: `MLPClassifier.partial_fit` (one epoch, with its input validation and
label handling) and `predict_proba`, with only the import changed. The fm-epoch column
is fastmlp's raw epoch (`_engine.train_epoch` on prepared arrays: the kernels alone, what
bench/ab.py compares between builds); fm-epoch/fm is what the estimator's Python adds.

Every contender runs in its own worker process (so its peak memory is its own), and the
workers take turns epoch by epoch, so a noisy neighbour slows them all alike. The table
gives the median seconds per epoch (per call for predict), the ratios to fastmlp, and the
floor: the configuration's floating-point operations divided by the rate NumPy's matrix
multiply reaches on this machine in this run (on large square matrices). The products
column is a second, tighter limit: NumPy doing only the matrix products of the same
epoch, at the same shapes, where small and skinny products run well below that rate;
fm/products is how far fastmlp is from pure multiplication. The bfloat16 contenders
(issue 16) are the same estimator with compute_dtype="bfloat16" and PyTorch under
torch.autocast("cpu", dtype=torch.bfloat16) (float32 configurations only); bf16/fm is
fastmlp-bf16's time over fastmlp's (e16/epoch: the same for the raw epochs,
fm-epoch-bf16 over fm-epoch, where the estimators' Python is left out), bf16/floor
fastmlp-bf16's time over the float32 floor (the
floor column's rate is float32's, or float64's for a float64 configuration, and is
printed beside it), pt16/bf16 PyTorch-autocast's time over fastmlp-bf16's. Peak memory is each
worker's resident-set high-water mark during the configuration, above what it held once
its data was loaded.

    python bench/compare.py                          # all configurations, 5 repeats
    python bench/compare.py -c mnist tabular -r 3    # a quick look (under 2 minutes)
"""
from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Config:
    name: str
    data: str                  # "fashion" or "tabular"
    hidden: tuple
    activation: str = "relu"
    batch_size: int = 128
    dtype: str = "float32"
    solver: str = "sgd"        # "sgd" (momentum 0.9, Nesterov) or "adam"
    lr: float = 0.01
    predict: bool = False      # time predict_proba on the training rows instead


CONFIGS = {c.name: c for c in [
    Config("seed", "fashion", (30,), "logistic", batch_size=10),
    Config("mnist", "fashion", (256,), batch_size=128),
    Config("wide", "fashion", (1024,), batch_size=256),
    Config("tabular", "tabular", (64, 64), batch_size=32),
    Config("predict", "fashion", (256,), predict=True),
    Config("mnist64", "fashion", (256,), batch_size=128, dtype="float64"),
    # MLPClassifier(): 100 relu units, Adam, batch min(200, n), alpha 1e-4.
    Config("default", "fashion", (100,), batch_size=200, solver="adam", lr=0.001),
]}
CONTENDERS = ["fastmlp", "fm-epoch", "scikit-learn", "pytorch", "numpy", "products",
              "fastmlp-bf16", "fm-epoch-bf16", "pytorch-bf16"]
BF16 = ("fastmlp-bf16", "fm-epoch-bf16", "pytorch-bf16")
ALPHA = 1e-4
# Seconds of rest before each timed epoch: a BLAS thread pool keeps its threads spinning
# for a while after its last call (OpenBLAS: about 0.1 s), and the next contender would
# otherwise start on cores that the previous one still occupies.
SETTLE = 0.25


# ---- data -------------------------------------------------------------------------------

def load_data(name, dtype):
    """(X, y): X (n, d) C-contiguous of dtype, y int64 labels."""
    if name == "fashion":
        from fastmlp.datasets import load_fashion_mnist
        try:
            (X, y), _ = load_fashion_mnist(dtype=dtype)
        except FileNotFoundError as exc:
            sys.exit(f"{exc}\nOn Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist")
        return X, y
    from sklearn.datasets import make_classification
    X, y = make_classification(100_000, 20, n_informative=10, n_classes=2, random_state=0)
    return np.ascontiguousarray(X, dtype=dtype), y.astype(np.int64)


def layer_sizes(cfg, X, y):
    n_classes = int(y.max()) + 1
    return [X.shape[1], *cfg.hidden, 1 if n_classes == 2 else n_classes]


def init_weights(sizes, dtype, seed=0):
    """Glorot-uniform weights and biases, as scikit-learn draws them."""
    rng = np.random.default_rng(seed)
    coefs, intercepts = [], []
    for i, o in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6 / (i + o))
        coefs.append(rng.uniform(-bound, bound, (i, o)).astype(dtype))
        intercepts.append(rng.uniform(-bound, bound, o).astype(dtype))
    return coefs, intercepts


def train_flops(sizes, n):
    """Forward 2n*I*O per layer, backward dW 2n*I*O per layer and dA for all but the first."""
    products = [i * o for i, o in zip(sizes[:-1], sizes[1:])]
    return 2.0 * n * (2 * sum(products) + sum(products[1:]))


def predict_flops(sizes, n):
    return 2.0 * n * sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))


def matmul_rate(dtype, size=2048, repeats=5):
    """FLOP/s of NumPy's own matrix multiply on size x size operands (the best of a few)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    a @ b
    best = min(timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * size ** 3 / best


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ---- contenders: setup(cfg, X, y, sizes) then one epoch (or predict) per call -----------

class FastMLP:
    """fastmlp's raw epoch (or forward pass): the kernels on prepared arrays."""

    compute_dtype = None  # the products' type (Spec's compute_dtype)

    def setup(self, cfg, X, y, sizes):
        from fastmlp import _engine
        self.engine = _engine
        self.coefs, self.intercepts = init_weights(sizes, X.dtype)
        # on cache lines, as the estimators hand them to the kernels (bench/ab.py may
        # run a revision older than _engine.aligned)
        align = getattr(_engine, "aligned", None)
        if align:
            self.coefs = [align(c) for c in self.coefs]
            self.intercepts = [align(b) for b in self.intercepts]
        out = "logistic" if sizes[-1] == 1 else "softmax"
        self.spec = (_engine.Spec(cfg.activation, out, "log_loss") if self.compute_dtype is None
                     else _engine.Spec(cfg.activation, out, "log_loss",
                                       compute_dtype=self.compute_dtype))
        self.X = _engine.kernel_X(X, X.dtype)
        self.Y = (y[:, None] if sizes[-1] == 1 else np.eye(sizes[-1])[y]).astype(X.dtype)
        params = self.coefs + self.intercepts
        self.opt = (_engine.AdamState(params, learning_rate_init=cfg.lr) if cfg.solver == "adam"
                    else _engine.SGDState(params, learning_rate_init=cfg.lr, momentum=0.9))
        self.rng = np.random.default_rng(0)
        self.cfg = cfg

    def run(self):
        if self.cfg.predict:
            return self.engine.forward(self.coefs, self.intercepts, self.spec, self.X)
        idx = self.rng.permutation(len(self.Y)).astype(np.int64)
        return self.engine.train_epoch(self.coefs, self.intercepts, self.spec, self.X,
                                       self.Y, None, idx, self.cfg.batch_size, self.opt,
                                       alpha=ALPHA)


class FastMLPEpochBF16(FastMLP):
    compute_dtype = "bfloat16"


class Estimator:
    """An MLPClassifier as a user calls it: partial_fit for one epoch, predict_proba."""

    module = None  # where MLPClassifier is imported from
    extra = {}     # more parameters of the estimator

    def setup(self, cfg, X, y, sizes):
        import importlib
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        MLPClassifier = importlib.import_module(self.module).MLPClassifier
        warnings.simplefilter("ignore", ConvergenceWarning)
        self.model = MLPClassifier(cfg.hidden, activation=cfg.activation, solver=cfg.solver,
                                   alpha=ALPHA, batch_size=cfg.batch_size,
                                   learning_rate_init=cfg.lr, momentum=0.9, random_state=0,
                                   **self.extra)
        self.X, self.y, self.cfg = X, y, cfg
        self.classes = np.unique(y)
        if cfg.predict:
            self.model.partial_fit(X[:200], y[:200], classes=self.classes)
            self.model.coefs_, self.model.intercepts_ = init_weights(sizes, X.dtype)

    def run(self):
        if self.cfg.predict:
            return self.model.predict_proba(self.X)
        return self.model.partial_fit(self.X, self.y, classes=self.classes)


class ScikitLearn(Estimator):
    module = "sklearn.neural_network"


class FastMLPEstimator(Estimator):
    module = "fastmlp"


class FastMLPBF16(Estimator):
    module = "fastmlp"
    extra = {"compute_dtype": "bfloat16"}


class PyTorch:
    autocast = False  # the products in bfloat16 (torch.autocast), the weights float32

    def setup(self, cfg, X, y, sizes):
        import torch
        self.torch, self.cfg = torch, cfg
        act = {"relu": torch.nn.ReLU, "logistic": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}
        layers = []
        coefs, intercepts = init_weights(sizes, X.dtype)
        for l, (W, b) in enumerate(zip(coefs, intercepts)):
            lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=getattr(torch, cfg.dtype))
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
            layers += [lin] if l == len(coefs) - 1 else [lin, act[cfg.activation]()]
        self.model = torch.nn.Sequential(*layers)
        self.X = torch.from_numpy(X)
        binary = sizes[-1] == 1
        self.y = torch.from_numpy(y[:, None].astype(X.dtype) if binary else y)
        self.loss = torch.nn.BCEWithLogitsLoss() if binary else torch.nn.CrossEntropyLoss()
        self.final = torch.sigmoid if binary else (lambda z: torch.softmax(z, dim=1))
        params = self.model.parameters()
        self.opt = (torch.optim.Adam(params, lr=cfg.lr, weight_decay=ALPHA)
                    if cfg.solver == "adam" else
                    torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True,
                                    weight_decay=ALPHA))

    def run(self):
        torch = self.torch
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast)
        if self.cfg.predict:
            with torch.no_grad(), autocast:
                return self.final(self.model(self.X))
        perm = torch.randperm(len(self.X))
        for start in range(0, len(self.X), self.cfg.batch_size):
            rows = perm[start:start + self.cfg.batch_size]
            self.opt.zero_grad(set_to_none=True)
            with autocast:
                loss = self.loss(self.model(self.X[rows]), self.y[rows])
            loss.backward()
            self.opt.step()


class PyTorchBF16(PyTorch):
    autocast = True


class NumPy:
    """NumPy's own three-line forward pass (predict only)."""

    def setup(self, cfg, X, y, sizes):
        (self.W1, self.W2), (self.b1, self.b2) = init_weights(sizes, X.dtype)
        self.X = X

    def run(self):
        h = np.maximum(self.X @ self.W1 + self.b1, 0)
        z = h @ self.W2 + self.b2
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


class Products:
    """The matrix products of one epoch (or predict call) alone, by NumPy, at the same
    shapes: forward X_b @ W per layer, backward A^T @ delta per layer and delta @ W^T for
    every layer but the first. No activation, loss, gathering or update: what the work
    costs when it is nothing but matrix multiplies, the limit these shapes allow."""

    def setup(self, cfg, X, y, sizes):
        rng = np.random.default_rng(0)
        self.X, self.cfg = X, cfg
        self.W = [rng.standard_normal((i, o)).astype(X.dtype)
                  for i, o in zip(sizes[:-1], sizes[1:])]
        B = len(X) if cfg.predict else cfg.batch_size
        self.acts = [np.ones((B, o), X.dtype) for o in sizes[1:]]
        self.deltas = [np.ones((B, o), X.dtype) for o in sizes[1:]]
        self.dW = [np.empty_like(W) for W in self.W]
        self.dX = [np.empty((B, i), X.dtype) for i in sizes[:-1]]

    def run(self):
        n = len(self.X)
        step = n if self.cfg.predict else self.cfg.batch_size
        for start in range(0, n, step):
            x = self.X[start:start + step]
            b = len(x)
            inp = x
            for W, a in zip(self.W, self.acts):
                np.matmul(inp, W, out=a[:b])
                inp = a[:b]
            if self.cfg.predict:
                continue
            for l in range(len(self.W) - 1, -1, -1):
                inp = x if l == 0 else self.acts[l - 1][:b]
                d = self.deltas[l][:b]
                np.matmul(inp.T, d, out=self.dW[l])
                if l > 0:
                    np.matmul(d, self.W[l].T, out=self.dX[l][:b])


IMPLEMENTATIONS = {"fastmlp": FastMLPEstimator, "fm-epoch": FastMLP,
                   "scikit-learn": ScikitLearn, "pytorch": PyTorch, "numpy": NumPy,
                   "products": Products, "fastmlp-bf16": FastMLPBF16,
                   "fm-epoch-bf16": FastMLPEpochBF16, "pytorch-bf16": PyTorchBF16}


# ---- worker processes -------------------------------------------------------------------

def memory_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def worker(name, conn):
    """Serve ("setup", config) / ("run",) / ("peak",) / ("stop",) for one contender."""
    data = {}
    contender = None
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        try:
            if msg[0] == "setup":
                cfg = CONFIGS[msg[1]]
                contender = None
                key = (cfg.data, cfg.dtype)
                if key not in data:
                    data.clear()
                    data[key] = load_data(cfg.data, cfg.dtype)
                X, y = data[key]
                gc.collect()
                try:  # restart the high-water mark from here (Linux)
                    with open("/proc/self/clear_refs", "w") as f:
                        f.write("5")
                except OSError:
                    pass
                base = memory_kb("VmRSS")
                sizes = layer_sizes(cfg, X, y)
                contender = IMPLEMENTATIONS[name]()
                contender.setup(cfg, X, y, sizes)
                conn.send(("ok", (len(X), sizes)))
            elif msg[0] == "run":
                conn.send(("ok", timed(contender.run)))
            elif msg[0] == "peak":
                conn.send(("ok", (memory_kb("VmHWM") - base) / 1024))
        except ImportError as exc:
            if exc.name != "torch":
                raise
            conn.send(("skip", "PyTorch is not installed (pip install torch)"))


class Worker:
    def __init__(self, name, ctx):
        self.name = name
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker, args=(name, child), daemon=True)
        self.proc.start()

    def ask(self, *msg):
        self.conn.send(msg)
        return self.conn.recv()

    def close(self):
        self.conn.send(("stop",))
        self.proc.join()


def applicable(name, cfg):
    """NumPy's forward pass is a contender only for predict, bfloat16 products for
    float32 configurations only."""
    if name in BF16 and cfg.dtype != "float32":
        return False
    return cfg.predict or name != "numpy"


# ---- the run ----------------------------------------------------------------------------

def run(configs, contenders, repeats, warmup):
    """Time every configuration; the matmul rate is measured before each one and the
    best rate of the run sets every floor (a busy moment must not lower the floor)."""
    dtypes = sorted({CONFIGS[c].dtype for c in configs})
    rates = {dt: 0.0 for dt in dtypes}
    measured = {dt: [] for dt in dtypes}  # every rate measured: how steady the run was
    ctx = mp.get_context("spawn")
    workers = [Worker(name, ctx) for name in contenders]
    rows = []
    try:
        for cname in configs:
            cfg = CONFIGS[cname]
            for dt in dtypes:
                measured[dt].append(matmul_rate(dt))
                rates[dt] = max(rates[dt], measured[dt][-1])
            active, skipped = [], {}
            for w in workers:
                if not applicable(w.name, cfg):
                    continue
                status, info = w.ask("setup", cname)
                if status == "ok":
                    active.append(w)
                    n, sizes = info
                else:
                    skipped[w.name] = info
            if not active:
                print(f"{cname}: nothing ran: {skipped}", flush=True)
                continue
            times = {w.name: [] for w in active}
            for rep in range(warmup + repeats):
                # rotate the order so that no contender always runs right after another
                for w in active[rep % len(active):] + active[:rep % len(active)]:
                    time.sleep(SETTLE)
                    _, seconds = w.ask("run")
                    if rep >= warmup:
                        times[w.name].append(seconds)
            flops = predict_flops(sizes, n) if cfg.predict else train_flops(sizes, n)
            row = {"config": cname, "flops": flops, "dtype": cfg.dtype, "skipped": skipped,
                   "rate": rates[cfg.dtype],
                   "median": {k: statistics.median(v) for k, v in times.items()},
                   "times": times,
                   "peak_mb": {w.name: w.ask("peak")[1] for w in active}}
            rows.append(row)
            print(f"  {cname}: done", flush=True)
    finally:
        for w in workers:
            w.close()
    print("NumPy matmul (best of the run): " +
          ", ".join(f"{dt} {r / 1e9:.0f} GFLOP/s (measured {min(measured[dt]) / 1e9:.0f}-"
                    f"{max(measured[dt]) / 1e9:.0f} before its configurations)"
                    for dt, r in rates.items()))
    print(HEADER)
    for row in rows:
        # the best rate of the run (the row's own, measured before it, may be lower)
        row["rate"] = rates[row["dtype"]]
        row["floor"] = row["flops"] / row["rate"]
        print_row(row)
    print_paired(rows)
    return rates, rows


HEADER = "config   | " + " | ".join(f"{c:>12}" for c in CONTENDERS) + \
    " |   floor (at GFLOP/s) | sk/fm | pt/fm | fm/floor | fm/products | fm/epoch | " \
    "bf16/fm | e16/epoch | bf16/floor | pt16/bf16 | peak MB above data (fm / sk / pt / bf16)"


def print_row(row):
    med = row["median"]

    def cell(name):
        return f"{med[name]:12.4f}" if name in med else f"{'-':>12}"

    def ratio(name):
        return f"{med[name] / med['fastmlp']:5.1f}" if name in med and "fastmlp" in med \
            else f"{'-':>5}"

    fm_floor = f"{med['fastmlp'] / row['floor']:8.2f}" if "fastmlp" in med else f"{'-':>8}"
    fm_products = (f"{med['fastmlp'] / med['products']:11.2f}"
                   if "fastmlp" in med and "products" in med else f"{'-':>11}")
    fm_epoch = (f"{med['fastmlp'] / med['fm-epoch']:8.2f}"
                if "fastmlp" in med and "fm-epoch" in med else f"{'-':>8}")
    peaks = " / ".join(f"{row['peak_mb'][c]:.0f}" if c in row["peak_mb"] else "-"
                       for c in ("fastmlp", "scikit-learn", "pytorch", "fastmlp-bf16"))

    def over(a, b, width):
        return f"{med[a] / med[b]:{width}.2f}" if a in med and b in med else f"{'-':>{width}}"

    bf16_floor = (f"{med['fastmlp-bf16'] / row['floor']:10.2f}" if "fastmlp-bf16" in med
                  else f"{'-':>10}")
    floor = f"{row['floor']:7.4f} (f{row['dtype'][5:]} {row['rate'] / 1e9:4.0f})"
    print(f"{row['config']:8} | " + " | ".join(cell(c) for c in CONTENDERS) +
          f" | {floor:>20} | {ratio('scikit-learn')} | {ratio('pytorch')} | "
          f"{fm_floor} | {fm_products} | {fm_epoch} | {over('fastmlp-bf16', 'fastmlp', 7)} | "
          f"{over('fm-epoch-bf16', 'fm-epoch', 9)} | "
          f"{bf16_floor} | {over('pytorch-bf16', 'fastmlp-bf16', 9)} | {peaks}")
    for name, why in row["skipped"].items():
        print(f"           ({name} skipped: {why})")


# The ratios of the bfloat16 columns, round by round.
PAIRED = (("bf16/fm", "fastmlp-bf16", "fastmlp"), ("e16/epoch", "fm-epoch-bf16", "fm-epoch"),
          ("pt16/bf16", "pytorch-bf16", "fastmlp-bf16"))


def print_paired(rows):
    """The table's bfloat16 ratios are of medians. Every round runs each contender once,
    one after the other, so the ratio of a round compares times taken moments apart; on a
    machine whose pace drifts, the spread of those ratios shows how far one run's table
    can be trusted. Printed: the median of the rounds' ratios [lowest, highest]."""
    lines = []
    for row in rows:
        t = row["times"]
        cells = []
        for label, a, b in PAIRED:
            if a in t and b in t:
                r = sorted(x / y for x, y in zip(t[a], t[b]))
                cells.append(f"{label} {statistics.median(r):.2f} [{r[0]:.2f}, {r[-1]:.2f}]")
        if cells:
            lines.append(f"{row['config']:8} | " + " | ".join(cells))
    if lines:
        print("bfloat16 ratios round by round: median [lowest, highest]")
        print("\n".join(lines))


def blas_kernel():
    """What NumPy's BLAS runs, as threadpoolctl reports it."""
    from threadpoolctl import threadpool_info
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} "
                     f"{i.get('architecture', '')} {i.get('num_threads')} threads"
                     for i in threadpool_info() if i.get("user_api") == "blas")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--configs", nargs="+", choices=list(CONFIGS),
                        default=list(CONFIGS), help="configurations to run (default: all)")
    parser.add_argument("-r", "--repeats", type=int, default=5,
                        help="timed epochs (predict calls) per contender (default: 5)")
    parser.add_argument("-w", "--warmup", type=int, default=1,
                        help="untimed epochs first (default: 1)")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=CONTENDERS)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    # Some machines force an older OpenBLAS kernel through these; the peers are measured
    # as a user's machine runs them. OpenBLAS reads them when it loads, and NumPy (loaded
    # here already) measures the floor's matmul rate: the run starts again without them,
    # and the workers inherit that environment.
    forced = [var for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if var in os.environ]
    if forced:
        print(f"({', '.join(forced)} set: unset for this run, which starts again)", flush=True)
        env = {k: v for k, v in os.environ.items() if k not in forced}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    from fastmlp._config import config_info
    print(f"CPU: {config_info()['CPU']}; NumPy's BLAS: {blas_kernel()}")
    print(f"seconds per epoch (predict: per call), median of {args.repeats}; "
          f"ratios = contender / fastmlp (the estimator)")
    rates, rows = run(args.configs, args.contenders, args.repeats, args.warmup)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"matmul_flops": rates, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
