"""Threads under load: fastmlp on its default threads against one thread, with one core
kept busy by another process (a bounded pure-Python spin) and on a quiet machine.

    python bench/contention.py [--rows 20000] [--repeats 5] [--cases ...] [--quiet-only]

Two worker processes hold the same data, one started with OMP_NUM_THREADS=1 and one
without; they take turns, run by run, each first in every other round (medians of
--repeats after one warm-up run), so a busy moment slows both alike. Cases: an MLPClassifier epoch (partial_fit) for every
configuration of bench/compare.py on the first --rows rows of Fashion-MNIST (tabular:
its synthetic data), predict_proba on all 60,000 rows (compare.py's 784-256-10), and an
L-BFGS fit (5,000 x 64 -> 100 -> 10, 60 iterations). Prints seconds and default / one
thread: above 1.0 the default threads are slower.
"""
import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Some machines force an older OpenBLAS kernel through these; unset for the workers.
for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)

# The spinner: one core's worth of pure Python, for at most `seconds` (it ends by itself
# if this script dies).
SPIN = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end: pass\n"
SETTLE = 0.2  # seconds of rest before each run (worker threads of the other spin down)


def make_case(name, rows):
    """A function of no arguments that runs the case once."""
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    import fastmlp
    warnings.simplefilter("ignore", ConvergenceWarning)
    if name == "lbfgs":
        from sklearn.datasets import make_classification
        X, y = make_classification(n_samples=5000, n_features=64, n_informative=32,
                                   n_classes=10, random_state=0)
        X = X.astype(np.float32)
        return lambda: fastmlp.MLPClassifier((100,), solver="lbfgs", max_iter=60,
                                             random_state=0).fit(X, y)
    from compare import ALPHA, CONFIGS, init_weights, layer_sizes, load_data
    cfg = CONFIGS[name]
    X, y = load_data(cfg.data, cfg.dtype)
    if not cfg.predict:
        X, y = X[:rows], y[:rows]
    model = fastmlp.MLPClassifier(cfg.hidden, activation=cfg.activation, solver=cfg.solver,
                                  alpha=ALPHA, batch_size=cfg.batch_size,
                                  learning_rate_init=cfg.lr, momentum=0.9, random_state=0)
    classes = np.unique(y)
    if cfg.predict:
        model.partial_fit(X[:200], y[:200], classes=classes)
        model.coefs_, model.intercepts_ = init_weights(layer_sizes(cfg, X, y), X.dtype)
        return lambda: model.predict_proba(X)
    return lambda: model.partial_fit(X, y, classes=classes)


def worker(conn, rows):
    cases = {}
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        name = msg[1]
        if name not in cases:
            cases[name] = make_case(name, rows)
            cases[name]()  # warm-up (and the governor's first look)
        time.sleep(SETTLE)
        t0 = time.perf_counter()
        cases[name]()
        conn.send(time.perf_counter() - t0)


def start_worker(rows, one_thread):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    saved = os.environ.get("OMP_NUM_THREADS")
    if one_thread:
        os.environ["OMP_NUM_THREADS"] = "1"
    else:
        os.environ.pop("OMP_NUM_THREADS", None)
    proc = ctx.Process(target=worker, args=(child, rows), daemon=True)
    proc.start()
    if saved is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = saved
    return proc, parent


def measure(cases, rows, repeats, busy):
    spinner = None
    if busy:
        spinner = subprocess.Popen([sys.executable, "-c", SPIN, "3600"])
    workers = {threads: start_worker(rows, threads == "1 thread")
               for threads in ("default", "1 thread")}
    try:
        for name in cases:
            times = {threads: [] for threads in workers}
            for rep in range(repeats):
                # in turn, the first one way and then the other, so that neither always
                # runs right after the other's run
                order = list(workers.items())
                for threads, (_, conn) in order[::-1] if rep % 2 else order:
                    conn.send(("run", name))
                    times[threads].append(conn.recv())
            med = {t: statistics.median(v) for t, v in times.items()}
            print(f"{'busy' if busy else 'quiet':6} {name:9} {med['default']:9.3f} "
                  f"{med['1 thread']:9.3f} {med['default'] / med['1 thread']:9.2f}",
                  flush=True)
    finally:
        for proc, conn in workers.values():
            conn.send(("stop",))
            proc.join(timeout=30)
        if spinner is not None:
            spinner.kill()


def main(argv=None):
    from compare import CONFIGS
    names = list(CONFIGS) + ["lbfgs"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", nargs="+", choices=names, default=names)
    parser.add_argument("--quiet-only", action="store_true")
    parser.add_argument("--busy-only", action="store_true")
    args = parser.parse_args(argv)
    from fastmlp._config import config_info
    info = config_info()
    print(f"CPU: {info['CPU']}, {os.cpu_count()} logical CPUs; fastmlp on {info['isa']}, "
          f"{info['threads']} threads by default")
    print(f"{'load':6} {'case':9} {'default':>9} {'1 thread':>9} {'dflt/1':>9}")
    if not args.busy_only:
        measure(args.cases, args.rows, args.repeats, busy=False)
    if not args.quiet_only:
        measure(args.cases, args.rows, args.repeats, busy=True)


if __name__ == "__main__":
    main()
