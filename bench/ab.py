"""Two builds of fastmlp on the same work, epoch by epoch in turn: is a change faster?

On a machine whose speed drifts (a shared virtual machine can change pace threefold from
one minute to the next), two separate timings cannot show a 5% change. This script
builds a git revision of fastmlp beside the installed one, starts one worker process per
variant (build and thread count), and has them run epochs of a compare.py configuration
in turn, so that every variant sees the same moments of the machine. It prints the
quickest and the median epoch of each variant and their ratio to the first.

    python bench/ab.py --base HEAD~1 -c seed mnist           # the last commit's effect
    python bench/ab.py -c wide --variants new:1 new:2        # two threads against one
    python bench/ab.py --compute bfloat16 -c mnist wide      # the bfloat16 epochs
    python bench/ab.py --all-threads -c mnist                # kernels, not the governor

A variant is BUILD:THREADS, BUILD being "base" (the --base revision, built with CMake
into --scratch) or "new" (the fastmlp that Python imports here).

With --all-threads the batches run on all the variant's threads whatever the thread
governor would choose (its test hook makes one thread look a second slower per unit; it
still tries one thread every 64 batches): when the machine's pace drifts, the governor's
choices drift with it, and they then decide a comparison of kernels more than the kernels.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def build_base(rev, scratch, defines=()):
    """The package of revision rev, built, in scratch/<commit>/pkg (with CMake's
    defines, NAME=VALUE each, in scratch/<commit>-<NAME=VALUE...>/pkg); returns that
    directory. A build already there is reused."""
    found = subprocess.run(["git", "-C", ROOT, "rev-parse", "--verify", rev + "^{commit}"],
                           capture_output=True, text=True)
    if found.returncode:
        sys.exit(f"--base {rev}: not a revision of {ROOT}")
    where = os.path.join(scratch, "-".join([found.stdout.strip(), *defines]))
    src, build, pkg = (os.path.join(where, d) for d in ("src", "build", "pkg"))
    built = os.path.join(pkg, "fastmlp")
    if os.path.isdir(built) and any(n.startswith("_kernels") for n in os.listdir(built)):
        return pkg
    for d in (src, pkg):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
    for cmd in (["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                 f"-DPython_EXECUTABLE={sys.executable}", *(f"-D{d}" for d in defines)],
                ["cmake", "--build", build, "-j", str(os.cpu_count() or 1)]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"building {rev} failed:\n{done.stdout}{done.stderr}")
    shutil.copytree(os.path.join(src, "src", "fastmlp"), os.path.join(pkg, "fastmlp"))
    for name in os.listdir(build):
        if name.startswith("_kernels") and name.endswith((".so", ".pyd")):
            shutil.copy(os.path.join(build, name), os.path.join(pkg, "fastmlp"))
    return pkg


def epoch_contender(pkg, config, compute):
    """compare.py's raw epoch of a configuration (compute "bfloat16": its bfloat16 one),
    set up on the fastmlp in pkg (None: the installed one); returns (compare, contender).
    Also bench/phases.py's."""
    if pkg:
        # ahead of the installed fastmlp, editable installs' import hooks included
        sys.meta_path[:] = [f for f in sys.meta_path
                            if "Redirecting" not in type(f).__name__]
        sys.path.insert(0, pkg)
    sys.path.insert(0, HERE)
    import compare
    import fastmlp
    assert not pkg or fastmlp.__file__.startswith(pkg), fastmlp.__file__
    cfg = compare.CONFIGS[config]
    X, y = compare.load_data(cfg.data, cfg.dtype)
    contender = compare.FastMLPEpochBF16() if compute == "bfloat16" else compare.FastMLP()
    contender.setup(cfg, X, y, compare.layer_sizes(cfg, X, y))
    return compare, contender


def worker(pkg, config, compute, all_threads):
    """Set up one configuration, then run one epoch per line read; print its seconds."""
    compare, contender = epoch_contender(pkg, config, compute)
    if all_threads:
        from fastmlp import _kernels
        _kernels.governor_test_delay(1.0, 0.0)
    contender.run()  # warm-up
    print("ready", flush=True)
    for _ in sys.stdin:
        print(compare.timed(contender.run), flush=True)


def compare_variants(config, variants, pkg, repeats, compute, all_threads):
    procs = {}
    for v in variants:
        build, threads = v.split(":")
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        args = [sys.executable, __file__, "--worker", config, "--compute", compute]
        if all_threads:
            args.append("--all-threads")
        if build == "base":
            args += ["--pkg", pkg]
        procs[v] = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True, env=env)
    for p in procs.values():
        assert p.stdout.readline().strip() == "ready"
    times = {v: [] for v in variants}
    for rep in range(repeats):
        order = variants[rep % len(variants):] + variants[:rep % len(variants)]
        for v in order:
            procs[v].stdin.write("go\n")
            procs[v].stdin.flush()
            times[v].append(float(procs[v].stdout.readline()))
    for p in procs.values():
        p.stdin.close()
        p.wait()
    first = min(times[variants[0]])
    print(f"{config:8s} " + "   ".join(
        f"{v}: min {min(t):.4f} median {statistics.median(t):.4f} ({first / min(t):.2f}x)"
        for v, t in times.items()), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--configs", nargs="+", default=["mnist"],
                        help="compare.py configurations (default: mnist)")
    parser.add_argument("--base", default="HEAD", help="git revision of the base build")
    parser.add_argument("--variants", nargs="+",
                        help="BUILD:THREADS each (default: base and new, all threads)")
    parser.add_argument("-r", "--repeats", type=int, default=11,
                        help="timed epochs per variant (default: 11)")
    parser.add_argument("--scratch", default=os.path.join(ROOT, "build", "ab"),
                        help="where the base revision is built")
    parser.add_argument("--compute", choices=["float32", "bfloat16"], default="float32",
                        help="the products of the epochs (default: the configuration's "
                             "float32/float64; bfloat16: compute_dtype='bfloat16')")
    parser.add_argument("--all-threads", action="store_true",
                        help="batches on all threads, whatever the thread governor says")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--pkg", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.pkg, args.worker, args.compute, args.all_threads)
    threads = os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    variants = args.variants or [f"base:{threads}", f"new:{threads}"]
    pkg = None
    if any(v.startswith("base:") for v in variants):
        t0 = time.perf_counter()
        pkg = build_base(args.base, args.scratch)
        print(f"built {args.base} in {time.perf_counter() - t0:.0f} s", flush=True)
    for config in args.configs:
        compare_variants(config, variants, pkg, args.repeats, args.compute,
                         args.all_threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
