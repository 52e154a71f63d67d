"""Beyond memory and beyond one machine: partial_fit on chunks of a np.memmap, dask-ml's
Incremental on a Dask array, and GridSearchCV through joblib's Dask backend, both on a
two-worker distributed.LocalCluster bound to 127.0.0.1."""
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from fastmlp import MLPClassifier

pytestmark = pytest.mark.filterwarnings("ignore", category=ConvergenceWarning)

N_SAMPLES, N_FEATURES, CHUNK = 2000, 10, 250
CLASSES = np.array([0, 1, 2])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_SAMPLES, N_FEATURES)).astype(np.float32)
    y = np.digitize(X[:, 0] + X[:, 1], [-0.7, 0.7])
    return X, y


def new_model():
    return MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.05, random_state=0)


def fit_by_chunks(X, y):
    """One pass of partial_fit over consecutive chunks of CHUNK rows."""
    model = new_model()
    for start in range(0, len(X), CHUNK):
        model.partial_fit(X[start:start + CHUNK], y[start:start + CHUNK], classes=CLASSES)
    return model


def assert_same_weights(a, b):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)


def test_partial_fit_on_memmap_chunks(tmp_path, data):
    X, y = data
    np.save(tmp_path / "X.npy", X)
    X_on_disk = np.load(tmp_path / "X.npy", mmap_mode="r")  # read-only, paged in by chunk
    assert isinstance(X_on_disk, np.memmap)
    model = fit_by_chunks(X_on_disk, y)
    assert_same_weights(model, fit_by_chunks(X, y))
    assert model.score(X, y) > 0.85


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed (fastmlp[dask]) missing")
    pytest.importorskip("dask_ml", reason="dask-ml (fastmlp[dask]) missing")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def ran_on_cluster(client, tasks):
    """Whether the recorded tasks ran, all of them on the cluster's workers."""
    workers = {task["worker"] for task in tasks.data}
    return bool(workers) and workers <= set(client.scheduler_info()["workers"])


def test_incremental_on_a_dask_array(client, data):
    import dask.array as da
    from dask_ml.wrappers import Incremental
    from distributed import get_task_stream

    X, y = data
    dX = da.from_array(X, chunks=(CHUNK, N_FEATURES))
    dy = da.from_array(y, chunks=CHUNK)
    with get_task_stream(client) as tasks:
        incremental = Incremental(new_model(), shuffle_blocks=False)
        incremental.fit(dX, dy, classes=CLASSES)
        score = incremental.score(dX, dy)
    assert ran_on_cluster(client, tasks)
    # The workers trained, block after block, the model a local loop over the chunks trains.
    assert_same_weights(incremental.estimator_, fit_by_chunks(X, y))
    assert score > 0.85


def test_grid_search_through_joblib_dask_backend(client, data):
    import joblib
    from distributed import get_task_stream

    X, y = data

    def search():
        return GridSearchCV(new_model().set_params(max_iter=20), {"alpha": [1e-4, 1e-1]}, cv=2)

    with get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        on_cluster = search().fit(X, y)
    assert ran_on_cluster(client, tasks)
    local = search().fit(X, y)
    np.testing.assert_array_equal(on_cluster.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
    assert on_cluster.best_score_ > 0.85


def test_workers_run_fastmlp_single_threaded(client):
    def openmp_threads():
        from threadpoolctl import threadpool_info

        import fastmlp._kernels  # noqa: F401  (loads the kernels' OpenMP runtime)
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]

    # distributed starts worker processes with OMP_NUM_THREADS=1
    # (distributed.nanny.pre-spawn-environ): workers, not threads, share the cores.
    per_worker = client.run(openmp_threads)
    assert len(per_worker) == 2
    assert all(threads and set(threads) == {1} for threads in per_worker.values())
