"""Where a training batch's time goes: the phases of compare.py's epochs, timed.

Builds a git revision (default HEAD: commit a change first) with CMake's
FASTMLP_PHASE_TIMERS=ON beside the installed fastmlp (bench/ab.py's build, reused when
there), then runs epochs of compare.py configurations in a worker process per
configuration and compute type, the computes in turn epoch by epoch, and prints the ticks
(the CPU's time-stamp counter on x86-64, else nanoseconds) per batch of each phase:

    pair         bfloat16 pairs of the batch's rows (AVX512_BF16 and AMX builds)
    forward      the forward pass, every layer
    loss         the loss and the output layer's delta
    back_out     the output layer's backward products and its step
    back_hidden  the hidden layers' between the first and the output
    back_first   the first layer's weight gradient with its fused step
    batch        the whole batch: gathering its rows, the above, the thread governor

for the quickest epoch (the quiet machine's) and the median one (the host's).

    python bench/phases.py -c mnist default                  # float32 and bfloat16
    python bench/phases.py -c wide --compute float32 -r 5
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

DEFINES = ("FASTMLP_PHASE_TIMERS=ON",)


def worker(pkg, config, compute):
    """Set up one configuration; per line read, one epoch, then print its seconds and
    its phase ticks as one JSON line."""
    from ab import epoch_contender
    compare, contender = epoch_contender(pkg, config, compute)
    from fastmlp import _kernels
    if _kernels.phase_ticks() is None:
        sys.exit(f"{pkg}: built without the phase timers")
    contender.run()  # warm-up
    _kernels.phase_ticks()
    print("ready", flush=True)
    for _ in sys.stdin:
        seconds = compare.timed(contender.run)
        print(json.dumps({"seconds": seconds, "ticks": _kernels.phase_ticks()}), flush=True)


def run(pkg, config, computes, repeats):
    import compare
    if compare.CONFIGS[config].predict:
        print(f"{config}: a predict configuration (no training batches)")
        return
    procs = {c: subprocess.Popen([sys.executable, __file__, "--worker", config,
                                  "--compute", c, "--pkg", pkg], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True) for c in computes}
    for p in procs.values():
        assert p.stdout.readline().strip() == "ready"
    epochs = {c: [] for c in computes}
    for _ in range(repeats):
        for c in computes:
            procs[c].stdin.write("go\n")
            procs[c].stdin.flush()
            epochs[c].append(json.loads(procs[c].stdout.readline()))
    for p in procs.values():
        p.stdin.close()
        p.wait()
    from fastmlp._kernels import PHASES
    unit = epochs[computes[0]][0]["ticks"]["unit"]
    print(f"{config}: {unit} per batch (k = 1000), quickest epoch / median epoch")
    print(f"  {'':10}" + "".join(f"{name:>17}" for name in PHASES) + "   epoch s")
    for c in computes:
        per_batch = [{k: e["ticks"][k] / e["ticks"]["batches"] for k in PHASES}
                     for e in epochs[c]]
        quickest = min(range(repeats), key=lambda i: epochs[c][i]["seconds"])
        cells = [f"{per_batch[quickest][k] / 1e3:7.0f}k /"
                 f"{statistics.median(b[k] for b in per_batch) / 1e3:6.0f}k" for k in PHASES]
        seconds = [e["seconds"] for e in epochs[c]]
        print(f"  {c:10}" + "".join(f"{x:>17}" for x in cells) +
              f"   {min(seconds):.3f} / {statistics.median(seconds):.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--configs", nargs="+", default=["mnist"],
                        help="compare.py training configurations (default: mnist)")
    parser.add_argument("--compute", nargs="+", choices=["float32", "bfloat16"],
                        default=["float32", "bfloat16"],
                        help="the products (default: both, in turn)")
    parser.add_argument("-r", "--repeats", type=int, default=8,
                        help="timed epochs per compute (default: 8)")
    parser.add_argument("--rev", default="HEAD", help="git revision to build (default: HEAD)")
    parser.add_argument("--scratch", default=os.path.join(ROOT, "build", "ab"),
                        help="where it is built (bench/ab.py's place)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--pkg", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.pkg, args.worker, args.compute[0])
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    from ab import build_base
    t0 = time.perf_counter()
    pkg = build_base(args.rev, args.scratch, DEFINES)
    print(f"built {args.rev} with the phase timers in {time.perf_counter() - t0:.0f} s",
          flush=True)
    for config in args.configs:
        run(pkg, config, args.compute, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
