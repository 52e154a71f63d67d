"""bench/compare.py's round-by-round bfloat16 ratios: each round's times paired, not the
medians of all rounds (which can come from different rounds)."""
import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def compare():
    path = os.path.join(HERE, os.pardir, "bench", "compare.py")
    spec = importlib.util.spec_from_file_location("compare_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up there)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_paired_ratios_pair_the_times_of_each_round(compare, capsys):
    # bf16/fm by round: 0.5, 0.9, 0.5 (a ratio of medians would say 0.45 / 0.6 = 0.75);
    # e16/epoch: 0.5, 0.5 (round 2 slow for both: the machine was busy), 0.6
    times = {"fastmlp": [1.0, 0.5, 0.6], "fastmlp-bf16": [0.5, 0.45, 0.3],
             "fm-epoch": [0.4, 0.8, 0.4], "fm-epoch-bf16": [0.2, 0.4, 0.24]}
    compare.print_paired([{"config": "mnist", "times": times}])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("bfloat16 ratios round by round")
    assert out[1] == ("mnist    | bf16/fm 0.50 [0.50, 0.90] | "
                      "e16/epoch 0.50 [0.50, 0.60]")


def test_paired_ratios_are_left_out_without_bfloat16_contenders(compare, capsys):
    compare.print_paired([{"config": "wide", "times": {"fastmlp": [1.0], "fm-epoch": [0.9]}}])
    assert capsys.readouterr().out == ""
