"""Thread control: threadpoolctl sees and limits the OpenMP runtime that fastmlp's kernels
run on, OMP_NUM_THREADS is honoured, and GridSearchCV(n_jobs=2) does not oversubscribe.

The kernels ask OpenMP how many threads to use through `fm_omp_max_threads` (an exported
symbol of the extension), so calling it shows exactly what the next kernel will use; the
subprocess tests count the threads a fit really starts.
"""
import ctypes
import os
import subprocess
import sys
import textwrap
import threading

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_info, threadpool_limits

from fastmlp import MLPClassifier, _kernels

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads ELF symbols and /proc (Linux only)"
)

KERNELS = ctypes.CDLL(_kernels.__file__)  # the already loaded extension


def kernel_threads():
    """The thread count the next parallel kernel will use in this thread."""
    return KERNELS.fm_omp_max_threads()


class DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def extension_openmp_path():
    """The file of the OpenMP runtime the extension's calls resolve to: dlsym on the
    extension finds omp_get_max_threads among its dependencies, dladdr names the file
    (a bundled copy such as fastmlp.libs/libgomp-<hash>.so in a repaired wheel)."""
    address = ctypes.cast(KERNELS.omp_get_max_threads, ctypes.c_void_p)
    info = DlInfo()
    dladdr = ctypes.CDLL(None).dladdr
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(DlInfo)]
    assert dladdr(address, ctypes.byref(info)) != 0
    return os.path.realpath(info.dli_fname.decode())


def fastmlp_openmp_entry():
    path = extension_openmp_path()
    entries = [e for e in threadpool_info() if os.path.realpath(e["filepath"]) == path]
    assert len(entries) == 1, f"threadpoolctl does not list {path}: {threadpool_info()}"
    return entries[0]


def test_threadpool_info_lists_the_kernels_openmp():
    entry = fastmlp_openmp_entry()
    assert entry["user_api"] == "openmp" and entry["internal_api"] == "openmp"
    assert entry["num_threads"] == kernel_threads()


@pytest.mark.parametrize("user_api", [None, "openmp"])
def test_threadpool_limits_makes_kernels_single_threaded(user_api):
    before = kernel_threads()
    with threadpool_limits(limits=1, user_api=user_api):
        assert kernel_threads() == 1
        assert fastmlp_openmp_entry()["num_threads"] == 1
    assert kernel_threads() == before


def test_limits_apply_to_the_calling_thread():
    # OpenMP keeps the thread count per thread: a limit set in one Python thread does not
    # reach threads started meanwhile (the README says so), OMP_NUM_THREADS reaches all.
    seen = []
    with threadpool_limits(limits=1, user_api="openmp"):
        thread = threading.Thread(target=lambda: seen.append(kernel_threads()))
        thread.start()
        thread.join()
        assert kernel_threads() == 1
    assert seen == [kernel_threads()]


# Fits and predicts twice, first under threadpool_limits(1), then with the environment's
# OpenMP settings, and prints how many threads the process gained each time (libgomp
# keeps its pool threads alive after a parallel region, so they can be counted after).
COUNT_THREADS = textwrap.dedent("""
    import os
    import numpy as np
    from threadpoolctl import threadpool_limits
    from fastmlp import MLPRegressor

    def n_threads():
        return len(os.listdir("/proc/self/task"))

    def started(X, y):
        before = n_threads()
        MLPRegressor(hidden_layer_sizes=(128,), batch_size=512, max_iter=2).fit(X, y).predict(X)
        return n_threads() - before

    rng = np.random.default_rng(0)
    X = rng.standard_normal((4096, 64)).astype(np.float32)
    y = X[:, :4].sum(axis=1)
    with threadpool_limits(limits=1, user_api="openmp"):
        limited = started(X, y)
    print(limited, started(X, y))
""")


def test_threads_started_by_a_fit():
    # A thread count that differs from OpenMP's default (the number of cores).
    n = 2 if (os.cpu_count() or 1) >= 3 else 3
    env = dict(os.environ, OMP_NUM_THREADS=str(n), OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", COUNT_THREADS], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    limited, free = map(int, result.stdout.split())
    assert limited == 0  # threadpool_limits(1) wins over the environment
    assert free == n - 1  # OMP_NUM_THREADS is honoured: the main thread and n - 1 more


# A user's first fit inside threadpool_limits, with nothing but `import fastmlp` before:
# threadpoolctl limits the OpenMP runtimes loaded when its context opens, so the
# kernels' runtime must already be loaded by the package's import. Prints the threads
# the fit started (0 when limited).
FIRST_FIT_LIMITED = textwrap.dedent("""
    import os
    import numpy as np
    import fastmlp
    from threadpoolctl import threadpool_limits

    X = np.random.default_rng(0).standard_normal((4096, 64)).astype(np.float32)
    y = X[:, :4].sum(axis=1)
    with threadpool_limits(limits=1, user_api="openmp"):
        Regressor = fastmlp.MLPRegressor  # the first use imports the estimators' modules
        before = len(os.listdir("/proc/self/task"))
        Regressor(hidden_layer_sizes=(128,), batch_size=512, max_iter=2).fit(X, y)
        print(len(os.listdir("/proc/self/task")) - before)
""")


def test_first_fit_inside_threadpool_limits_is_limited():
    env = dict(os.environ, OMP_NUM_THREADS="3", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", FIRST_FIT_LIMITED],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == 0


def kernel_threads_scorer(estimator, X, y):
    """Scores a fold and reports the kernels' thread count in the worker that fitted it."""
    return {"accuracy": estimator.score(X, y), "threads": float(kernel_threads())}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_workers_do_not_oversubscribe():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 8))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    n_jobs = 2
    search = GridSearchCV(
        MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.05, max_iter=40,
                      random_state=0), {"alpha": [1e-4, 1e-2]},
        cv=2, n_jobs=n_jobs, scoring=kernel_threads_scorer, refit="accuracy",
    )
    parent = kernel_threads()
    search.fit(X, y)
    # joblib's loky workers cap OpenMP at cpu_count // n_jobs threads (at least one), so
    # the n_jobs fits together use no more threads than there are cores.
    worker = max(joblib.cpu_count() // n_jobs, 1)
    np.testing.assert_array_equal(search.cv_results_["mean_test_threads"], worker)
    assert kernel_threads() == parent
    assert search.best_score_ > 0.8
