"""fastmlp.show_config() and FASTMLP_ISA: what fastmlp runs on is visible, and chosen."""
import importlib.util
import io
import os
import subprocess
import sys

import pytest

import fastmlp
from fastmlp import _kernels

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


def test_show_config_says_what_runs():
    out = io.StringIO()
    fastmlp.show_config(file=out)
    text = out.getvalue()
    for key in ("fastmlp", "isa", "isas supported", "FASTMLP_ISA", "threads", "OpenMP",
                "compiler", "flags", "CPU", "numpy", "scikit-learn"):
        assert f"{key}: " in text, key
    assert f"isa: {_kernels.isa()}\n" in text
    assert f"fastmlp: {fastmlp.__version__}\n" in text
    assert _kernels.isa() in _kernels.supported_isas()
    assert "generic" in _kernels.supported_isas()


def _forced(value):
    return subprocess.run(
        [sys.executable, "-c", "import fastmlp; from fastmlp import _kernels as k; "
                               "print(k.isa()); print(fastmlp.show_config())"],
        env=dict(os.environ, FASTMLP_ISA=value), capture_output=True, text=True, check=True)


@pytest.mark.parametrize("value", ["GENERIC", "Generic", "generic"])
def test_fastmlp_isa_is_case_insensitive(value):
    proc = _forced(value)
    assert proc.stdout.splitlines()[0] == "generic"
    assert f"FASTMLP_ISA: {value}" in proc.stdout
    assert "RuntimeWarning" not in proc.stderr


def test_an_unknown_fastmlp_isa_is_warned_about_at_import():
    proc = _forced("avx9000")
    assert "FASTMLP_ISA='avx9000' is unknown or not supported" in proc.stderr
    assert proc.stdout.splitlines()[0] == _kernels.supported_isas()[0]


def test_benchmark_records_carry_the_configuration():
    spec = importlib.util.spec_from_file_location("bench_conftest",
                                                  os.path.join(BENCH, "conftest.py"))
    bench_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_conftest)
    machine_info = {}
    bench_conftest.pytest_benchmark_update_machine_info(None, machine_info)
    info = machine_info["fastmlp"]
    assert info["isa"] == _kernels.isa() and info["threads"] == _kernels.max_threads()
    assert info["fastmlp"] == fastmlp.__version__
