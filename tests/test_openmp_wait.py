"""fastmlp's OpenMP threads spin briefly (GOMP_SPINCOUNT=20000) before they sleep, unless
the user chose (OMP_WAIT_POLICY or GOMP_SPINCOUNT); the setting reaches only the OpenMP
runtime the kernels load, never the process environment (other libraries, children).
libgomp prints the values it took with OMP_DISPLAY_ENV=verbose."""
import os
import subprocess
import sys

import pytest

from fastmlp import _config

pytestmark = pytest.mark.skipif(
    "libgomp" not in _config.config_info()["OpenMP"],
    reason="the spin count is a setting of GNU libgomp, which this build does not use")

CODE = ("import os, fastmlp; fastmlp.MLPClassifier; "
        "print('ENV', os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")


def run(**env):
    full = {k: v for k, v in os.environ.items()
            if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    full.update(env, OMP_DISPLAY_ENV="verbose")
    done = subprocess.run([sys.executable, "-c", CODE], env=full, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout + done.stderr


def test_the_kernels_spin_briefly_and_the_environment_is_left_alone():
    out = run()
    assert "GOMP_SPINCOUNT = '20000'" in out
    assert "ENV None None" in out


@pytest.mark.parametrize("env, shown", [
    ({"GOMP_SPINCOUNT": "1234"}, "GOMP_SPINCOUNT = '1234'"),
    ({"OMP_WAIT_POLICY": "active"}, "OMP_WAIT_POLICY = 'ACTIVE'"),
])
def test_a_users_choice_rules(env, shown):
    out = run(**env)
    assert shown in out
    assert "GOMP_SPINCOUNT = '20000'" not in out
