#!/usr/bin/env bash
# Side-by-side comparison of catopt, the hand-written Rust baselines and the JAX references
# on the workloads of bench/reference/README.md (W1, W2 with N = 1e3, 1e5, 1e6).
#
#   bench/compare.sh [--reps K] [--threads N] [--skip-jax] [--python PYTHON]
#
# 1. builds catopt and the hand-written baselines in release mode;
# 2. creates a virtual environment bench/.venv with `pip install jax numpy` for the JAX
#    references (skipped, with a message, when that fails; --python uses an existing
#    interpreter that has jax instead);
# 3. runs every implementation (catopt: `catopt run --format json`, K times; the others
#    time K runs internally), checks that the final objectives agree to 1e-9 relative, and
#    prints one table with seconds per step, ratios and peak memory (/usr/bin/time -v).
# Exit status: 0 when every objective agrees, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=5
threads=""
skip_jax=0
python_jax=""
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) reps="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --skip-jax) skip_jax=1; shift ;;
        --python) python_jax="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if ! command -v python3 >/dev/null 2>&1; then
    echo "compare.sh: python3 is needed (it drives the runs and prints the table)" >&2
    exit 2
fi

echo "== building (release)" >&2
cargo build --release --quiet --bin catopt
handwritten=$(cargo bench --no-run --quiet --bench handwritten --message-format=json \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "handwritten":
        print(m["executable"])')
if [ -z "$handwritten" ]; then
    echo "compare.sh: could not find the hand-written baseline executable" >&2
    exit 2
fi

if [ "$skip_jax" = 1 ]; then
    echo "== JAX skipped (--skip-jax)" >&2
elif [ -n "$python_jax" ]; then
    if ! "$python_jax" -c 'import jax, numpy' >/dev/null 2>&1; then
        echo "compare.sh: $python_jax cannot import jax and numpy; JAX is skipped" >&2
        python_jax=""
    fi
else
    venv=bench/.venv
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import jax, numpy' >/dev/null 2>&1; then
        echo "== creating $venv and installing jax, numpy (CPU)" >&2
        if python3 -m venv "$venv" >&2 && "$venv/bin/pip" install --quiet jax numpy >&2; then
            :
        else
            echo "compare.sh: could not install jax and numpy into $venv; JAX is skipped" >&2
            echo "            (needs python3-venv and network access; or pass --python PYTHON)" >&2
        fi
    fi
    if "$venv/bin/python" -c 'import jax, numpy' >/dev/null 2>&1; then
        python_jax="$venv/bin/python"
    fi
fi

exec python3 bench/compare.py \
    --catopt target/release/catopt \
    --handwritten "$handwritten" \
    --jax-python "$python_jax" \
    --reps "$reps" \
    ${threads:+--threads "$threads"}
