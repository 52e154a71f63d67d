"""The thread governor (csrc/runtime.c): each training batch, L-BFGS loss-and-gradient
call and predict call runs on one thread or on all, whichever its recent record of
seconds per flop says is cheaper, trying the other way again now and then.

A busy core is simulated with the test hook `_kernels.governor_test_delay`, which adds
seconds to the measured time of each unit run one way (nothing sleeps): the governor must
move to the other way, and move back when the delay moves. The outputs stay the same bit
for bit whichever way runs. The record is per calling thread, so each test starts it
afresh in a new thread."""
import threading
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastmlp
from fastmlp import _kernels

BATCH, GRAD, PREDICT = 0, 1, 2
DELAY = 10.0  # seconds: far above any real unit's time, so the outcome is certain

rng = np.random.default_rng(0)
X = rng.normal(size=(2000, 200)).astype(np.float32)
y = rng.integers(0, 10, 2000)


def in_new_thread(fn):
    """fn() run in a new thread (a fresh governor record); its result or exception."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # re-raised in the caller
            out["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.fixture(autouse=True)
def no_delay():
    yield
    _kernels.governor_test_delay(0.0, 0.0)


def needs_threads():
    if in_new_thread(_kernels.max_threads) < 2:
        pytest.skip("one OpenMP thread here: the governor has nothing to choose")


def test_predict_moves_to_the_cheaper_way_and_back():
    needs_threads()
    net = fastmlp.Network([200, 256, 10], epochs=1, random_state=0).fit(X[:200], y[:200])
    flops = 2 * len(X) * (200 * 256 + 256 * 10)
    reference = net.predict_proba(X)

    def run():
        """The calls each way took until the governor preferred the undelayed way."""
        calls = []
        for one, all_, want, at_least in ((0.0, DELAY, 0, 100), (DELAY, 0.0, 1, 0)):
            _kernels.governor_test_delay(one, all_)
            for n in range(1, 200):
                np.testing.assert_array_equal(net.predict_proba(X), reference)
                if n >= at_least and _kernels.governor_preferred(PREDICT, flops) == want:
                    break
            calls.append(n)
        return calls
    first, second = in_new_thread(run)
    assert first == 100  # one thread preferred after 100 calls (their trials of all
    # threads confirming it)
    # a record that favoured one thread by far (all threads DELAY slower) tries all
    # threads again within FM_GOV_CLEAR_PERIOD (256) units of the trial that found it so,
    # which came among the first few calls
    assert second <= 256


def test_lbfgs_calls_move_to_one_thread_when_all_are_delayed():
    needs_threads()
    flops = 6 * len(X) * (200 * 256 + 256 * 10)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return fastmlp.MLPClassifier((256,), solver="lbfgs", max_iter=8,
                                         random_state=0).fit(X, y)

    def run(one, all_):
        _kernels.governor_test_delay(one, all_)
        model = fit()
        return model, _kernels.governor_preferred(GRAD, flops)
    slow_all, preferred_one = in_new_thread(lambda: run(0.0, DELAY))
    slow_one, preferred_all = in_new_thread(lambda: run(DELAY, 0.0))
    assert (preferred_one, preferred_all) == (0, 1)
    for a, b in zip(slow_all.coefs_ + slow_all.intercepts_,
                    slow_one.coefs_ + slow_one.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_training_batches_move_to_one_thread_when_all_are_delayed():
    needs_threads()
    rows = 256
    flops = 6 * rows * (200 * 256 + 256 * 10)

    def run(one, all_):
        _kernels.governor_test_delay(one, all_)
        net = fastmlp.Network([200, 256, 10], batch_size=rows, epochs=2,
                              random_state=0).fit(X, y)
        return net, _kernels.governor_preferred(BATCH, flops)
    net_a, preferred_one = in_new_thread(lambda: run(0.0, DELAY))
    net_b, preferred_all = in_new_thread(lambda: run(DELAY, 0.0))
    assert (preferred_one, preferred_all) == (0, 1)
    assert net_a.loss_curve_ == net_b.loss_curve_


def test_small_work_is_not_timed():
    assert _kernels.governor_preferred(PREDICT, 1e3) == -1
    assert _kernels.governor_stats(PREDICT, 1e3) is None


# A predict call just above the smallest governed size (FM_PAR_MIN_FLOPS, 2e6 flops),
# cheap enough to call thousands of times.
SMALL_ROWS = 20
SMALL_FLOPS = 2 * SMALL_ROWS * (200 * 256 + 256 * 10)


def small_net():
    return fastmlp.Network([200, 256, 10], epochs=1, random_state=0).fit(X[:200], y[:200])


def test_first_unit_on_all_threads_is_a_warm_up():
    # The first unit on all threads (here the first of all) pays for starting or waking
    # the other threads: its time is not recorded, the next unit's on all threads is.
    needs_threads()
    net = small_net()

    def run():
        seen = []
        for _ in range(2):
            net.predict_proba(X[:SMALL_ROWS])
            stats = _kernels.governor_stats(PREDICT, SMALL_FLOPS)
            seen.append((stats["runs"], stats["cost"][1] > 0))
        return seen
    assert in_new_thread(run) == [((0, 1), False), ((0, 2), True)]


def test_all_threads_past_their_deadline_finish_on_one():
    # A negative delay on one thread makes its recorded cost negative, so every unit on
    # all threads is past its deadline (twice one thread's expected time) when its first
    # parallel region would start: it runs on one thread and counts as aborted. The
    # outputs are the same either way.
    needs_threads()
    net = small_net()
    reference = net.predict_proba(X[:SMALL_ROWS])

    def run():
        _kernels.governor_test_delay(-DELAY, 0.0)
        for _ in range(300):
            np.testing.assert_array_equal(net.predict_proba(X[:SMALL_ROWS]), reference)
        return _kernels.governor_stats(PREDICT, SMALL_FLOPS)
    stats = in_new_thread(run)
    # the first two units on all threads (warm-up and timed one) ran before one thread
    # had a record, so without a deadline; every later one is a trial that overran it
    assert stats["runs"][1] > 2
    assert stats["aborted"] == stats["runs"][1] - 2


def test_trials_back_off_further_when_all_threads_cost_far_more():
    # All threads delayed far beyond one: trials of them back off up to 1024 units
    # apart (64 when the ways are close), and after the delay moves, all threads are
    # still tried again within twice that.
    needs_threads()
    net = small_net()
    data = X[:SMALL_ROWS]

    def run():
        _kernels.governor_test_delay(0.0, DELAY)
        for _ in range(3000):
            net.predict(data)
        on_all = _kernels.governor_stats(PREDICT, SMALL_FLOPS)["runs"][1]
        _kernels.governor_test_delay(DELAY, 0.0)
        for n in range(1, 2 * 1024 + 1):
            net.predict(data)
            if _kernels.governor_preferred(PREDICT, SMALL_FLOPS) == 1:
                break
        return on_all, n
    on_all, calls = in_new_thread(run)
    # trials after 4, 8, ..., 1024 units: ten in 3000 (with a cap of 64, about 50),
    # each of two units on all threads (a warm-up, then the timed one), and the first two
    assert on_all <= 24
    assert calls <= 2 * 1024


def test_trials_of_one_thread_back_off_further_when_it_costs_far_more():
    # One thread delayed far beyond all (a quiet machine, where all threads are cheaper
    # by far): its trials back off to 256 units apart at once, then up to 1024. When all
    # threads then slow down, their own record shows it, without a trial: one thread is
    # preferred again within a few units.
    needs_threads()
    net = small_net()
    data = X[:SMALL_ROWS]

    def run():
        _kernels.governor_test_delay(DELAY, 0.0)
        for _ in range(3000):
            net.predict(data)
        on_one = _kernels.governor_stats(PREDICT, SMALL_FLOPS)["runs"][0]
        _kernels.governor_test_delay(0.0, DELAY)
        for n in range(1, 100):
            net.predict(data)
            if _kernels.governor_preferred(PREDICT, SMALL_FLOPS) == 0:
                return on_one, n
        return on_one, None
    on_one, calls = in_new_thread(run)
    # trials after 4, then 256, 512, 1024 units: five in 3000 with the first unit (with a
    # cap of 64, about 50)
    assert on_one <= 8
    assert calls is not None and calls <= 8


def test_a_lead_lost_outside_a_trial_brings_the_next_trial_close():
    # All threads preferred by far, trials of one thread 1024 units apart. All threads
    # slow down, within their deadline: their own record hands the lead to one thread
    # (no trial). When the slowdown ends, all threads are tried again within a few units,
    # not where the 1024-unit period would put it.
    needs_threads()
    net = small_net()
    data = X[:SMALL_ROWS]

    def calls_until(preferred):
        for n in range(1, 2000):
            net.predict(data)
            if _kernels.governor_preferred(PREDICT, SMALL_FLOPS) == preferred:
                return n
        return None

    def run():
        _kernels.governor_test_delay(DELAY, 0.0)
        for _ in range(3000):
            net.predict(data)
        _kernels.governor_test_delay(DELAY, DELAY)  # all threads as slow as one
        to_one = calls_until(0)
        _kernels.governor_test_delay(DELAY, 0.0)
        return to_one, calls_until(1)
    to_one, back = in_new_thread(run)
    assert to_one is not None and to_one <= 8
    assert back is not None and back <= 8


def test_the_first_unit_after_a_pause_is_a_warm_up():
    # After a pause longer than the other threads spin (FM_GOV_IDLE, 1 ms: the Python
    # between two partial_fit calls), a unit on all threads finds them asleep: it is a
    # warm-up, not recorded, even though the one before it ran on all threads.
    needs_threads()
    net = small_net()
    data = X[:SMALL_ROWS]

    def run():
        _kernels.governor_test_delay(DELAY, 0.0)  # all threads preferred
        for _ in range(20):
            net.predict(data)
        before = _kernels.governor_stats(PREDICT, SMALL_FLOPS)
        time.sleep(0.02)
        _kernels.governor_test_delay(DELAY, DELAY)  # this unit would look slow
        net.predict(data)
        after = _kernels.governor_stats(PREDICT, SMALL_FLOPS)
        return before, after
    before, after = in_new_thread(run)
    assert after["runs"][1] == before["runs"][1] + 1  # it ran on all threads
    assert after["cost"] == before["cost"]  # and was not recorded


def test_all_threads_must_be_cheaper_by_a_margin():
    # All threads 5% cheaper than one (simulated): a tie within 10% goes to one thread.
    needs_threads()
    net = small_net()

    def run(one, all_):
        _kernels.governor_test_delay(one, all_)
        for _ in range(30):
            net.predict(X[:SMALL_ROWS])
        return _kernels.governor_preferred(PREDICT, SMALL_FLOPS)
    assert in_new_thread(lambda: run(1.0, 0.95)) == 0
    assert in_new_thread(lambda: run(1.0, 0.8)) == 1


def test_a_trial_replaces_the_stale_record():
    # All threads preferred (one thread delayed by DELAY, all by DELAY / 4); then the
    # delay on one thread goes: its first trial alone moves the governor to one thread
    # (averaged with the stale record, it would still lose to all threads).
    needs_threads()
    net = small_net()
    data = X[:SMALL_ROWS]

    def run():
        _kernels.governor_test_delay(DELAY, DELAY / 4)
        for _ in range(30):
            net.predict(data)
        assert _kernels.governor_preferred(PREDICT, SMALL_FLOPS) == 1
        _kernels.governor_test_delay(0.0, DELAY / 4)
        runs = _kernels.governor_stats(PREDICT, SMALL_FLOPS)["runs"][0]
        # (one thread, 4x dearer, is preferred by far: its trials come 256 units apart)
        for _ in range(2 * 256):
            net.predict(data)
            if _kernels.governor_stats(PREDICT, SMALL_FLOPS)["runs"][0] > runs:
                return _kernels.governor_preferred(PREDICT, SMALL_FLOPS)
        return None
    assert in_new_thread(run) == 0


def test_one_overrun_of_preferred_all_threads_is_tried_again_soon():
    # All threads preferred; one unit on them overruns (simulated: three times one
    # thread's time), then the delay goes: a hiccup, tried again after 4 units, so all
    # threads are preferred again within a few calls (not after the long period that
    # the trials of one thread had reached).
    needs_threads()
    net = small_net()
    data = X[:SMALL_ROWS]

    def run():
        _kernels.governor_test_delay(DELAY, 0.0)
        for _ in range(60):
            net.predict(data)
        assert _kernels.governor_preferred(PREDICT, SMALL_FLOPS) == 1
        _kernels.governor_test_delay(DELAY, 3 * DELAY)
        net.predict(data)
        assert _kernels.governor_stats(PREDICT, SMALL_FLOPS)["cost"][1] > 0
        assert _kernels.governor_preferred(PREDICT, SMALL_FLOPS) == 0
        _kernels.governor_test_delay(DELAY, 0.0)
        for n in range(1, 100):
            net.predict(data)
            if _kernels.governor_preferred(PREDICT, SMALL_FLOPS) == 1:
                return n
        return None
    calls = in_new_thread(run)
    assert calls is not None and calls <= 8


def test_a_short_streak_on_all_threads_keeps_the_back_off_of_overruns():
    # On a busy core a trial of all threads can be lucky (the other work paused) and the
    # units after it overrun: each overrun of preferred all threads puts the next trial
    # twice as far off (4, 8, ... units). A few units on all threads that ran to their end
    # between two overruns must not undo that (it takes FM_GOV_MAX_PERIOD in a row).
    needs_threads()
    net = small_net()
    data = X[:SMALL_ROWS]

    def calls_until_all_preferred():
        for n in range(1, 100):
            net.predict(data)
            if _kernels.governor_preferred(PREDICT, SMALL_FLOPS) == 1:
                return n
        return None

    def overrun():
        _kernels.governor_test_delay(DELAY, 3 * DELAY)
        net.predict(data)
        assert _kernels.governor_preferred(PREDICT, SMALL_FLOPS) == 0
        _kernels.governor_test_delay(DELAY, 0.0)  # the next trial is lucky

    def run():
        _kernels.governor_test_delay(DELAY, 0.0)
        for _ in range(60):
            net.predict(data)
        overrun()
        first = calls_until_all_preferred()
        for _ in range(3):  # a short streak on all threads, each to its end
            net.predict(data)
        assert _kernels.governor_preferred(PREDICT, SMALL_FLOPS) == 1
        overrun()
        return first, calls_until_all_preferred()
    first, second = in_new_thread(run)
    # the first overrun: tried again after 4 units (a warm-up and a timed unit on all
    # threads then); the second, after the streak: after 8
    assert first is not None and second is not None
    assert second == first + 4



def test_a_large_predict_learns_one_thread_on_its_first_rows():
    # When a predict call of at least 16,384 rows falls on a unit the governor would run
    # on one thread to learn its cost (the first timing, or a trial while all threads are
    # preferred), only its first 8,192 rows (FM_PREDICT_TRIAL_ROWS) are that unit, and
    # the rest of the call is the next unit, on all threads: a user's third 60,000-row
    # call no longer runs at half speed. Outputs are the same bit for bit, and the same as
    # predicting the rows in parts.
    needs_threads()
    n = 20000
    rows = np.random.default_rng(1).normal(size=(n, 20)).astype(np.float32)
    net = fastmlp.Network([20, 64, 3], epochs=1, random_state=0).fit(rows[:300], y[:300] % 3)
    flops = 2 * n * (20 * 64 + 64 * 3)
    parts = np.concatenate([net.predict_proba(rows[i:i + 1000]) for i in range(0, n, 1000)])

    def run():
        _kernels.governor_test_delay(DELAY, 0.0)  # all threads preferred for certain
        seen = []
        for _ in range(7):
            np.testing.assert_array_equal(net.predict_proba(rows), parts)
            seen.append(_kernels.governor_stats(PREDICT, flops)["runs"])
        cost_one = _kernels.governor_stats(PREDICT, flops)["cost"][0]
        # now all threads far dearer (per flop, past the delayed record of one): the
        # governor moves to one thread, and runs whole calls on it
        _kernels.governor_test_delay(0.0, 10 * DELAY)
        for _ in range(6):
            np.testing.assert_array_equal(net.predict_proba(rows), parts)
        return seen, cost_one, _kernels.governor_stats(PREDICT, flops)["runs"]
    seen, cost_one, last = in_new_thread(run)
    # calls 1 and 2 on all threads (a warm-up, then timed); call 3 learns one thread on
    # its first rows, its rest on all threads (a warm-up again); the trial of one thread
    # four units later is the seventh call's first rows
    assert seen == [(0, 1), (0, 2), (1, 3), (1, 4), (1, 5), (1, 6), (2, 7)]
    # the one-thread record is per flop of the part, DELAY spread over its 8,192 rows
    assert cost_one > DELAY / (2 * 8192 * (20 * 64 + 64 * 3))
    # the first of the six calls on all threads (overrunning), then one thread
    # preferred: the calls run on it whole, a unit each (but the trial of all threads
    # four units after the overrun, whole too)
    assert (last[0] - seen[-1][0], last[1] - seen[-1][1]) == (4, 2)


def test_a_large_loss_and_gradient_call_learns_one_thread_on_its_first_chunk():
    # The same for L-BFGS's loss-and-gradient calls of three chunks (4,096 rows) or more:
    # a unit that would learn one thread's cost is only the call's first chunk, the rest
    # the next unit. The loss and gradient are the same bit for bit.
    needs_threads()
    from fastmlp import _engine
    n = 3 * 4096 + 100
    gen = np.random.default_rng(2)
    rows = gen.normal(size=(n, 20)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[gen.integers(0, 3, n)]
    coefs = [gen.normal(size=(20, 64)).astype(np.float32) * 0.1,
             gen.normal(size=(64, 3)).astype(np.float32) * 0.1]
    intercepts = [np.zeros(64, np.float32), np.zeros(3, np.float32)]
    spec = _engine.Spec("relu", "softmax", "log_loss")
    flops = 6 * n * (20 * 64 + 64 * 3)
    ref_loss, ref_gW, ref_gb = _engine.loss_and_grad(coefs, intercepts, spec, rows, Y)

    def run():
        _kernels.governor_test_delay(DELAY, 0.0)  # all threads preferred for certain
        seen = []
        for _ in range(7):
            loss, gW, gb = _engine.loss_and_grad(coefs, intercepts, spec, rows, Y)
            assert loss == ref_loss
            for got, want in zip(gW + gb, ref_gW + ref_gb):
                np.testing.assert_array_equal(got, want)
            seen.append(_kernels.governor_stats(GRAD, flops)["runs"])
        return seen
    # as predict's: calls 1 and 2 on all threads, the third's first chunk on one and its
    # rest on all, the trial four units later the seventh call's first chunk
    assert in_new_thread(run) == [(0, 1), (0, 2), (1, 3), (1, 4), (1, 5), (1, 6), (2, 7)]
