"""What fastmlp runs on: `show_config()`, like `numpy.show_config()` and
`sklearn.show_versions()`, for bug reports and benchmark records."""
from __future__ import annotations

import os
import platform
import sys


# _OPENMP (a date) -> the OpenMP version the compiler implements
_OPENMP_VERSIONS = {201107: "3.1", 201307: "4.0", 201511: "4.5", 201811: "5.0", 202011: "5.1",
                    202111: "5.2"}


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def config_info():
    """A dict of what `show_config` prints: fastmlp's version, the instruction set the
    kernels run on and those this CPU has, FASTMLP_ISA, the OpenMP runtime and threads,
    the compiler and flags of the build, the CPU, and the versions of Python, NumPy,
    SciPy and scikit-learn."""
    import numpy
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    from . import __version__, _kernels

    build = _kernels.build_info()
    openmp = [f"{i.get('internal_api')} {i.get('version') or ''} ({i.get('filepath')})".strip()
              for i in threadpool_info() if i.get("user_api") == "openmp"]
    return {
        "fastmlp": __version__,
        "isa": _kernels.isa(),
        "isas supported": ", ".join(_kernels.supported_isas()),
        "FASTMLP_ISA": os.environ.get("FASTMLP_ISA", "(not set)"),
        "threads": _kernels.max_threads(),
        "OpenMP": (f"{_OPENMP_VERSIONS.get(build['openmp'], build['openmp'])}, runtimes "
                   f"loaded: {'; '.join(openmp) or 'none yet'}") if build["openmp"] else
                  "none (built without OpenMP: one thread)",
        "compiler": build["compiler"],
        "flags": build["flags"],
        "CPU": f"{_cpu_model()}, {os.cpu_count()} cores",
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def show_config(file=None):
    """Print what fastmlp runs on: its version, the instruction set in use and those the
    CPU has, FASTMLP_ISA, the OpenMP runtime and thread count, the compiler and flags of
    the build, the CPU, and the versions of Python, NumPy, SciPy and scikit-learn.

    Parameters
    ----------
    file : file-like, default=None
        Where to print (standard output when None).
    """
    info = config_info()
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:>{width}}: {value}", file=file or sys.stdout)
