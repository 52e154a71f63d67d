"""One epoch of MLPClassifier on a memmapped X of more than 2**31 elements.

The kernels index with 64-bit integers; this script proves it end to end: it writes a
float32 X of --elements values (default 2.2e9 = 8.8 GB) to a file, opens it as a
read-only memmap (the kernels read it in place: nothing is copied), trains one epoch
with partial_fit, checks the weights moved and are finite, and prints the time, the peak
resident memory (ru_maxrss, which includes the file's pages the kernels touched) and the
peak anonymous memory (RssAnon, sampled: private allocations, which is where a copy of X
would show). The file is deleted at the end.

    python bench/big_memmap.py [--elements 2.2e9] [--features 100] [--dir /tmp]
"""
import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

from fastmlp import MLPClassifier, _engine


def rss_anon_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


class PeakAnon:
    """Samples RssAnon every 50 ms in a thread; .peak is the largest value in KiB."""

    def __init__(self):
        self.peak = rss_anon_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_anon_kib())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def write_X(path, n, d, chunk_rows=1 << 18):
    """A float32 (n, d) file with a learnable label in the sign of column 0, written in
    chunks so that memory stays small."""
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(0)
    block = rng.standard_normal((chunk_rows, d), dtype=np.float32)
    for start in range(0, n, chunk_rows):
        rows = min(chunk_rows, n - start)
        X[start:start + rows] = block[:rows]
        block = np.roll(block, 1, axis=0)  # vary the rows a little from chunk to chunk
    X.flush()
    del X


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=float, default=2.2e9,
                        help="number of float32 values in X (default 2.2e9 > 2**31)")
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--dir", default=tempfile.gettempdir(),
                        help="where the temporary X file goes (needs 4 bytes/element)")
    args = parser.parse_args()

    d = args.features
    n = int(args.elements) // d
    need = 4 * n * d
    free = shutil.disk_usage(args.dir).free
    print(f"X: {n} x {d} float32 = {n * d} elements ({n * d / 2**31:.2f} x 2**31), "
          f"{need / 1e9:.1f} GB in {args.dir} ({free / 1e9:.0f} GB free)")
    if need > 0.9 * free:
        sys.exit("not enough free disk space; use --dir or --elements")

    fd, path = tempfile.mkstemp(suffix=".npy", dir=args.dir)
    os.close(fd)
    try:
        t0 = time.perf_counter()
        write_X(path, n, d)
        print(f"wrote X in {time.perf_counter() - t0:.1f} s")

        X = np.load(path, mmap_mode="r")
        y = (X[:, 0] > 0).astype(np.int8)  # reads one column: n values
        kernel_X = _engine.kernel_X(X, np.float32)
        copied = not np.shares_memory(kernel_X, X)
        del kernel_X
        print(f"the estimator's kernel input is {'a COPY of' if copied else 'a view of'} "
              f"the memmap (C-contiguous float32, opened read-only)")

        clf = MLPClassifier(hidden_layer_sizes=(args.hidden,), batch_size=args.batch_size,
                            random_state=0, shuffle=True)
        with PeakAnon() as anon:
            t0 = time.perf_counter()
            clf.partial_fit(X, y, classes=[0, 1])
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            acc = (clf.predict(X[:1_000_000]) == y[:1_000_000]).mean()
            pred_s = time.perf_counter() - t0
        finite = all(np.isfinite(c).all() for c in clf.coefs_)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"one epoch (partial_fit, {n} rows, batches of {args.batch_size}): "
              f"{fit_s:.1f} s; loss {clf.loss_:.4f}; weights finite: {finite}")
        print(f"predict on 1e6 rows: {pred_s:.2f} s, training accuracy there {acc:.3f}")
        print(f"peak RSS (ru_maxrss, includes the mapped file pages): "
              f"{peak / 2**20:.2f} GiB")
        print(f"peak anonymous memory (RssAnon, sampled every 50 ms): "
              f"{anon.peak / 2**20:.2f} GiB (X is {need / 2**30:.2f} GiB)")
        if not finite or copied:
            sys.exit(1)
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
