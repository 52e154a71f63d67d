"""pytest-benchmark records what fastmlp ran on beside its timings: two saved runs can
then be told apart by instruction set, threads, build and versions."""


def pytest_benchmark_update_machine_info(config, machine_info):
    from fastmlp._config import config_info

    machine_info["fastmlp"] = config_info()
