#!/usr/bin/env python
"""Hand-made mutants of the installed fastmlp: does the test suite kill them?

Each mutant is a text replacement in one of the package's Python sources. For each, the
installed package (the compiled kernels included) is copied to a temporary directory,
the replacement is applied to the copy, and pytest runs against the copy (put first on
PYTHONPATH; the script checks that `import fastmlp` really loads it). A mutant is
"killed" when at least one test fails; the table names the first failing test.

    python tools/mutants.py                      # every mutant, the default test run
    python tools/mutants.py --list               # the mutants' names
    python tools/mutants.py -m nesterov_ignored -m alpha_ignored -- tests/test_references.py

Arguments after "--" replace the default pytest selection (the whole default run); the
script always adds -x -q -p no:cacheprovider. The unmutated copy is run first as a
control (with --no-control to skip it): a selection that fails without a mutant would
make every mutant look killed. The source tree and the installed package are not touched.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (name, file in the package, old text, new text). Each old text must occur exactly once.
MUTANTS = [
    # --- the drop-ins must run through fastmlp's kernels -----------------------------
    ("drop_forward_pass_fast", "_multilayer_perceptron.py",
     "    def _forward_pass_fast(self, X, check_input=True):",
     "    def _unused_forward_pass_fast(self, X, check_input=True):"),
    ("drop_fit_stochastic", "_multilayer_perceptron.py",
     "    def _fit_stochastic(self, X, y, sample_weight, activations, deltas, coef_grads,",
     "    def _unused_fit_stochastic(self, X, y, sample_weight, activations, deltas,"
     " coef_grads,"),
    ("drop_loss_grad_lbfgs", "_multilayer_perceptron.py",
     "    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight, *unused):",
     "    def _unused_loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight,"
     " *unused):"),
    ("mlp_loss_scale_ignored", "_multilayer_perceptron.py",
     "return 1.0 / self.n_outputs_ if self.loss == \"squared_error\" else 1.0",
     "return 1.0"),
    # --- Network's own settings ------------------------------------------------------
    ("nesterov_ignored", "network.py",
     "dict(momentum=self.momentum, nesterov=self.nesterov)",
     "dict(momentum=self.momentum, nesterov=False)"),
    ("momentum_ignored", "network.py",
     "dict(momentum=self.momentum, nesterov=self.nesterov)",
     "dict(momentum=0.0, nesterov=self.nesterov)"),
    ("alpha_ignored", "network.py",
     "self._optimizer, alpha=self.alpha)",
     "self._optimizer, alpha=0.0)"),
    ("leaky_relu_slope_ignored", "network.py",
     "return _engine.spec(self.activation, self.output, loss, self.slope)",
     "return _engine.spec(self.activation, self.output, loss)"),
    ("alias_mae_wrong", "_engine.py",
     "    \"mae\": \"absolute_error\",",
     "    \"mae\": \"squared_error\","),
    ("alias_cross_entropy_wrong", "_engine.py",
     "    \"cross_entropy\": \"categorical_log_loss\",",
     "    \"cross_entropy\": \"binary_log_loss\","),
    ("alias_quadratic_wrong", "_engine.py",
     "    \"quadratic\": \"squared_error\",",
     "    \"quadratic\": \"absolute_error\","),
    ("alias_binary_cross_entropy_wrong", "_engine.py",
     "    \"binary_cross_entropy\": \"binary_log_loss\",",
     "    \"binary_cross_entropy\": \"categorical_log_loss\","),
    ("predict_proba_columns_swapped", "network.py",
     "            return np.hstack([1 - out, out])",
     "            return np.hstack([out, 1 - out])"),
    ("network_adam_betas_swapped", "network.py",
     "\"adam\": {}}[self.solver]",
     "\"adam\": dict(beta_1=0.999, beta_2=0.9)}[self.solver]"),
    # --- arrays handed to the kernels --------------------------------------------------
    ("kernel_X_always_copies", "_engine.py",
     "def kernel_X(X, dtype):\n",
     "def kernel_X(X, dtype):\n"
     "    if not sp.issparse(X):\n"
     "        X = np.array(X, dtype=dtype, order=\"C\", copy=True)\n"),
    # --- class_weight, rprop, callbacks (issue 17) ---------------------------------------
    ("class_weight_ignored", "_weights.py",
     "    if class_weight is None:\n        return sample_weight\n    if partial",
     "    if True:\n        return sample_weight\n    if partial"),
    ("partial_fit_takes_balanced", "_weights.py",
     "    if partial and isinstance(class_weight, str)",
     "    if False and isinstance(class_weight, str)"),
    ("early_stopping_drops_class_weight", "_multilayer_perceptron.py",
     '                sample_weight_train = halves["train"][0]', "                pass"),
    ("rprop_no_gradient_reset", "_engine.py", "        grad[shrink] = 0\n", ""),
    ("rprop_steps_unbounded", "_engine.py",
     "np.minimum(step[grow] * self.eta_plus, self.step_max)", "step[grow] * self.eta_plus"),
    ("callbacks_on_epoch_blocks", "_multilayer_perceptron.py",
     "rule_in_kernels = not (early_stopping or self.verbose or task.active)",
     "rule_in_kernels = not (early_stopping or self.verbose)"),
    ("callback_stop_ignored", "network.py",
     "                left -= k\n                if task.end_epoch(self.coefs_, self.intercepts_):",
     "                left -= k\n                if task.end_epoch(self.coefs_, self.intercepts_)"
     " and False:"),
    ("validation_loss_with_l2", "_multilayer_perceptron.py",
     "        return float(LOSS_FUNCTIONS[name](Y, out, sample_weight))",
     "        return float(LOSS_FUNCTIONS[name](Y, out, sample_weight)) + self.alpha"),
    # --- bfloat16 products must reach the kernels, in training and in prediction -------
    ("mlp_compute_dtype_ignored", "_multilayer_perceptron.py",
     "                            compute_dtype=self.compute_dtype)",
     "                            compute_dtype=None)"),
    ("network_compute_dtype_ignored", "network.py",
     "        return _engine.spec(self.activation, self.output, loss, self.slope,\n"
     "                            self.compute_dtype)",
     "        return _engine.spec(self.activation, self.output, loss, self.slope,\n"
     "                            None)"),
    ("predictor_float32_products", "_engine.py",
     "        made = (_kernels.Predictor(coefs, intercepts, spec.hidden, spec.out, spec.slope,\n"
     "                                   spec.compute), spec)",
     "        made = (_kernels.Predictor(coefs, intercepts, spec.hidden, spec.out, spec.slope,\n"
     "                                   0), spec)"),
]


def installed_package():
    """The directory of the fastmlp that a plain `python` imports (outside the repo's
    src/, which holds no compiled kernels)."""
    out = subprocess.run(
        [sys.executable, "-c",
         "import fastmlp, os; print(os.path.dirname(fastmlp.__file__))"],
        check=True, capture_output=True, text=True, cwd=tempfile.gettempdir())
    return Path(out.stdout.strip())


def make_copy(src: Path, root: Path, mutant=None):
    """root/fastmlp: a copy of the package src, with the mutant applied when given."""
    dst = root / "fastmlp"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    if mutant is not None:
        name, file, old, new = mutant
        path = dst / file
        text = path.read_text()
        count = text.count(old)
        if count != 1:
            raise SystemExit(f"mutant {name}: the text to replace occurs {count} times in "
                             f"{file} (expected once); the mutant is out of date")
        path.write_text(text.replace(old, new))
    return dst


def run_pytest(root: Path, selection, repo: Path, timeout):
    """(returncode, first failing test or '', seconds) of pytest run against root."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    where = subprocess.run(
        [sys.executable, "-c", "import fastmlp; print(fastmlp.__file__)"],
        env=env, capture_output=True, text=True, cwd=repo)
    if not where.stdout.strip().startswith(str(root)):
        raise SystemExit(f"fastmlp under PYTHONPATH={root} loads from "
                         f"{where.stdout.strip() or where.stderr.strip()}, not the copy")
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
             *selection], env=env, capture_output=True, text=True, cwd=repo,
            timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "(timed out)", time.perf_counter() - start
    seconds = time.perf_counter() - start
    first = ""
    for line in proc.stdout.splitlines():
        match = re.match(r"(FAILED|ERROR) (\S+)", line)
        if match:
            first = match.group(2)
            break
    if proc.returncode < 0:
        # the process died (a crash in compiled code): faulthandler's traceback, most
        # recent call first, names the test function it was in
        frames = re.findall(r'File "([^"]*/tests/[^"]*\.py)", line \d+ in (\w+)',
                            proc.stdout + proc.stderr)
        where = f"{os.path.relpath(frames[0][0], repo)}::{frames[0][1]}" if frames else "?"
        first = f"{where} (crashed: signal {-proc.returncode})"
    elif proc.returncode not in (0, 1) and not first:
        tail = proc.stdout.strip().splitlines()[-3:] + proc.stderr.strip().splitlines()[-3:]
        first = f"(pytest exit {proc.returncode}: {' | '.join(tail)})"
    return proc.returncode, first, seconds


def verdict(code, first):
    """The run of a mutant, given that the unmutated package passes the selection: any
    failing test, collection error or crash kills it."""
    if code is None:
        return "timeout"
    if code == 0:
        return "survived"
    if code == 1 or code < 0 or (code == 2 and first and not first.startswith("(")):
        return "killed"
    return f"error ({code})"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    selection = []
    if "--" in argv:
        cut = argv.index("--")
        argv, selection = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--mutant", action="append", default=[],
                        help="run only this mutant (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the run of the unmutated copy")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds per pytest run (default 1800)")
    args = parser.parse_args(argv)
    if args.list:
        for name, file, *_ in MUTANTS:
            print(f"{name:36s} {file}")
        return 0
    known = {m[0] for m in MUTANTS}
    unknown = set(args.mutant) - known
    if unknown:
        parser.error(f"unknown mutants {sorted(unknown)}; --list shows them")
    mutants = [m for m in MUTANTS if not args.mutant or m[0] in args.mutant]
    repo = Path(__file__).resolve().parent.parent
    src = installed_package()
    print(f"package: {src}\nselection: {' '.join(selection) or '(default run)'}\n",
          flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="fastmlp-mutants-") as tmp:
        # one snapshot of the installed package for every run, in case it is reinstalled
        # meanwhile
        src = make_copy(src, Path(tmp) / "installed")
        counts = {name: (src / file).read_text().count(old)
                  for name, file, old, _ in mutants}
        stale = [f"{name} ({n} matches)" for name, n in counts.items() if n != 1]
        if stale:
            print("out of date (the text to replace must occur exactly once): "
                  + ", ".join(stale), flush=True)
            return 2
        root = Path(tmp) / "control"
        make_copy(src, root)
        if not args.no_control:
            code, first, seconds = run_pytest(root, selection, repo, args.timeout)
            if code != 0:
                print(f"the unmutated package fails the selection ({first}); "
                      f"fix that first", flush=True)
                return 2
            print(f"control: passed in {seconds:.0f} s\n", flush=True)
        for mutant in mutants:
            root = Path(tmp) / mutant[0]
            make_copy(src, root, mutant)
            code, first, seconds = run_pytest(root, selection, repo, args.timeout)
            result = verdict(code, first)
            rows.append((mutant[0], result, first))
            print(f"{mutant[0]:36s} {result:9s} {seconds:6.0f} s  {first}", flush=True)
            shutil.rmtree(root)

    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"\n{'mutant':{width}s}  {'result':9s}  first failing test")
    for name, result, first in rows:
        print(f"{name:{width}s}  {result:9s}  {first}")
    return 1 if any(r[1] != "killed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
