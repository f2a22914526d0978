#!/usr/bin/env python3
"""Runs catopt, the hand-written baselines and the JAX references on W1 and W2, checks the
final objectives and prints the comparison table. Called by bench/compare.sh (which builds
everything and prepares the JAX environment); standard library only."""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-9
# The JAX references' final objectives (bench/reference/README.md), used when JAX is skipped.
STORED = {"W1": 0.87081278483, "W2 N=1e3": 1117.62417503, "W2 N=1e5": 111540.610927,
          "W2 N=1e6": 1115385.94504}
WORKLOADS = [
    # name, .opt file, hand-written arguments, JAX script arguments, steps
    ("W1", "bench/w1.opt", ["w1", "bench/data", "200"], ["bench/reference/w1_jax.py", "bench/data", "8", "32", "200"], 200),
    ("W2 N=1e3", "bench/w2_1000.opt", ["w2", "1000", "100"], ["bench/reference/w2_jax.py", "1000", "100"], 100),
    ("W2 N=1e5", "bench/w2_100000.opt", ["w2", "100000", "100"], ["bench/reference/w2_jax.py", "100000", "100"], 100),
    ("W2 N=1e6", "bench/w2_1000000.opt", ["w2", "1000000", "100"], ["bench/reference/w2_jax.py", "1000000", "100"], 100),
]
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def timed(command):
    """Runs command (under /usr/bin/time -v when present); returns stdout and peak RSS in MB."""
    full = [TIME, "-v"] + command if TIME else command
    done = subprocess.run(full, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"compare.py: `{' '.join(command)}` failed with status {done.returncode}")
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return done.stdout, (int(match.group(1)) / 1024 if match else None)


def reported(text, what):
    match = re.search(what + r"[^\n]*?\s([-+0-9.eE]+)\s*$", text, re.M)
    if not match:
        raise SystemExit(f"compare.py: no `{what}` in the output:\n{text}")
    return float(match.group(1))


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def load():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


def fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--catopt", required=True)
    parser.add_argument("--handwritten", required=True)
    parser.add_argument("--jax-python", default="")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    reps = str(args.reps)
    print(f"machine: {machine()}")
    print(f"started {time.strftime('%Y-%m-%d %H:%M:%S')}, load average {load()}")
    if not TIME:
        print("note: /usr/bin/time not found; peak memory is not measured (apt-get install time)")
    if not args.jax_python:
        print("note: JAX is skipped; objectives are checked against the stored reference values")
    rows, failures = [], []
    for name, opt, hand_args, jax_args, steps in WORKLOADS:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        # catopt: `reps` separate runs, medians of s/step and compile time.
        catopt_command = [args.catopt, "run", opt, "--format", "json", "--quiet"]
        if args.threads:
            catopt_command += ["--threads", str(args.threads)]
        runs = []
        for _ in range(args.reps):
            out, rss = timed(catopt_command)
            report = json.loads(out)
            runs.append((report["seconds"] / report["steps"], report["compile_seconds"],
                         report["objective"], rss, report["threads"]))
        catopt_step = statistics.median(r[0] for r in runs)
        compile_seconds = statistics.median(r[1] for r in runs)
        catopt_objective = runs[0][2]
        if any(r[2] != catopt_objective for r in runs):
            failures.append(f"{name}: catopt's objective differs between runs")
        catopt_rss = statistics.median(r[3] for r in runs) if TIME else None
        threads = runs[0][4]
        out, hand_rss = timed([args.handwritten] + hand_args + [reps])
        hand_step, hand_objective = reported(out, "seconds per step"), reported(out, "final objective")
        jax_step = jax_rss = None
        reference = STORED[name]
        if args.jax_python:
            out, jax_rss = timed([args.jax_python] + jax_args + [reps])
            jax_step, reference = reported(out, "seconds per step"), reported(out, "final objective")
        for who, value in (("catopt", catopt_objective), ("hand-written", hand_objective)):
            relative = abs(value - reference) / abs(reference)
            if not relative <= TOLERANCE:
                failures.append(f"{name}: {who} objective {value!r} vs reference {reference!r} "
                                f"(relative {relative:.2e} > {TOLERANCE:g})")
        rows.append((name, catopt_step, hand_step, jax_step, compile_seconds, catopt_rss, hand_rss,
                     jax_rss, catopt_objective, threads))

    print(f"finished {time.strftime('%Y-%m-%d %H:%M:%S')}, load average {load()}")
    print(f"catopt: `catopt run --format json` ({rows[0][9]} threads), median of {args.reps} runs;"
          f" hand-written: 1 thread, median of {args.reps} timed runs; JAX: jit, median of"
          f" {args.reps} timed runs")
    print()
    print("| workload | catopt s/step | hand-written s/step | JAX s/step | catopt / hand | catopt / JAX"
          " | catopt compile s | peak MB catopt / hand / JAX | final objective (catopt) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, c, h, j, comp, crss, hrss, jrss, objective, _) in rows:
        print(f"| {name} | {c:.3e} | {h:.3e} | {fmt(j, '.3e')} | {c / h:.2f} | "
              f"{fmt(c / j if j else None, '.2f')} | {comp:.3f} | {fmt(crss, '.0f')} / "
              f"{fmt(hrss, '.0f')} / {fmt(jrss, '.0f')} | {objective:.12g} |")
    print()
    if failures:
        print("OBJECTIVES DISAGREE:")
        for failure in failures:
            print("  " + failure)
        return 1
    print(f"all final objectives agree with the reference to {TOLERANCE:g} relative")
    return 0


if __name__ == "__main__":
    sys.exit(main())
