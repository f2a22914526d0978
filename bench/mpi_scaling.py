#!/usr/bin/env python3
"""MPI scaling of catopt: seconds per step with 1 and with 2 (or more) ranks, in one run.

    python3 bench/mpi_scaling.py [--reps K] [--ranks 1,2] [--steps N] [FILE.opt ...]

Builds catopt with `--features mpi`, then runs `mpirun -n R catopt run FILE --backend mpi
--format json` for every rank count, alternating the rank counts K times so that load
changes on a shared machine hit all of them alike. Prints, per file and rank count, the
median seconds per step (the run's own `seconds / steps`, which excludes start-up and
compilation), the speed-up over the first rank count, the bytes per step each run measured,
and the bytes `catopt explain --ranks R` predicted. Checks that every run ends with the
same values as the first (bit for bit). Default files: bench/w1.opt and
bench/w2_1000000.opt. Exit status 1 if values differ or the measured bytes differ from the
prediction.
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "catopt"


def run(ranks, file, steps):
    command = [
        "mpirun", "--allow-run-as-root", "--oversubscribe", "-n", str(ranks),
        str(BINARY), "run", file, "--backend", "mpi", "--format", "json", "--quiet",
    ]
    if steps:
        command += ["--steps", str(steps)]
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(output.stdout)


def predicted(ranks, file):
    text = subprocess.run(
        [str(BINARY), "explain", file, "--ranks", str(ranks)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return float(re.search(r"^Bytes per step.*: (\d+)\.$", text, re.M).group(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--ranks", default="1,2")
    parser.add_argument("--steps", type=int, default=0, help="override the solve block's steps")
    parser.add_argument("files", nargs="*", default=["bench/w1.opt", "bench/w2_1000000.opt"])
    args = parser.parse_args()
    rank_counts = [int(r) for r in args.ranks.split(",")]
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--features", "mpi", "--bin", "catopt"],
        cwd=ROOT, check=True,
    )
    ok = True
    print(f"{'file':<24} {'ranks':>5} {'s/step (median)':>16} {'speed-up':>9} "
          f"{'bytes/step':>11} {'predicted':>10}")
    for file in args.files:
        times = {r: [] for r in rank_counts}
        measured = {}
        reference = None
        for _ in range(args.reps):
            for ranks in rank_counts:
                result = run(ranks, file, args.steps)
                times[ranks].append(result["seconds"] / max(result["steps"], 1))
                measured[ranks] = result.get("bytes_per_step")
                if reference is None:
                    reference = result["values"]
                elif result["values"] != reference:
                    print(f"{file}: {ranks} ranks end with other values", file=sys.stderr)
                    ok = False
        base = statistics.median(times[rank_counts[0]])
        for ranks in rank_counts:
            median = statistics.median(times[ranks])
            prediction = predicted(ranks, file)
            if measured[ranks] != prediction:
                ok = False
            print(f"{file:<24} {ranks:>5} {median:>16.6f} {base / median:>8.2f}x "
                  f"{measured[ranks]:>11.0f} {prediction:>10.0f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
