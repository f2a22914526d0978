#!/usr/bin/env python3
"""SciPy's L-BFGS-B on W1 restricted to one task (bench/w1_one_task.opt): the time to a
gradient norm (Euclidean) of 1e-6, for comparison with `catopt run bench/w1_one_task.opt`
(method lbfgs, tolerance 1e-6).

Model (task 0): pred = tanh(X W + b) v + c, F = mean((pred - y)^2); W from data/w0.csv,
b = 0, v = 0.1, c = 0 (as the .opt file). Objective and gradient written by hand in NumPy
(backpropagation), handed to scipy.optimize.minimize(method="L-BFGS-B", jac=True) with
maxcor = 10 (lbfgs's default memory); the run stops at the first iterate whose gradient
norm is at most TOL (a callback; gtol/ftol are set to zero so that SciPy does not stop
first). Prints iterations, evaluations, the final objective and gradient norm, and the
median wall time of REPS runs.

Usage: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 w1_lbfgs_scipy.py DATADIR [TOL REPS]
"""
import sys
import time

import numpy as np
from scipy.optimize import minimize

data = sys.argv[1]
TOL = float(sys.argv[2]) if len(sys.argv) > 2 else 1e-6
REPS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
X = np.loadtxt(f"{data}/task0_x.csv", delimiter=",")
y = np.loadtxt(f"{data}/task0_y.csv", delimiter=",")
W0 = np.loadtxt(f"{data}/w0.csv", delimiter=",")
n, d = X.shape
H = W0.shape[1]
sizes = [d * H, H, H, 1]


def unpack(p):
    W = p[: d * H].reshape(d, H)
    b = p[d * H : d * H + H]
    v = p[d * H + H : d * H + 2 * H]
    c = p[-1]
    return W, b, v, c


def objective_and_gradient(p):
    W, b, v, c = unpack(p)
    hidden = np.tanh(X @ W + b)
    r = hidden @ v + c - y
    f = np.mean(r * r)
    dr = (2.0 / n) * r
    dv = hidden.T @ dr
    dc = dr.sum()
    dz = np.outer(dr, v) * (1.0 - hidden * hidden)
    dW = X.T @ dz
    db = dz.sum(axis=0)
    return f, np.concatenate([dW.ravel(), db, dv, [dc]])


p0 = np.concatenate([W0.ravel(), np.zeros(H), np.full(H, 0.1), [0.0]])

# The hand-written gradient against central differences, once.
f0, g0 = objective_and_gradient(p0)
for i in [0, 5, d * H + 3, d * H + H + 7, len(p0) - 1]:
    e = np.zeros_like(p0)
    e[i] = 1e-6
    fd = (objective_and_gradient(p0 + e)[0] - objective_and_gradient(p0 - e)[0]) / 2e-6
    assert abs(fd - g0[i]) <= 1e-6 * max(1.0, abs(fd)), (i, fd, g0[i])


class Reached(Exception):
    pass


def run():
    last = {}

    def fun(p):
        f, g = objective_and_gradient(p)
        last["x"], last["f"], last["g"] = p.copy(), f, g
        return f, g

    def callback(intermediate_result):
        xk = intermediate_result.x
        g = last["g"] if np.array_equal(last["x"], xk) else objective_and_gradient(xk)[1]
        if np.linalg.norm(g) <= TOL:
            raise StopIteration

    result = minimize(fun, p0, jac=True, method="L-BFGS-B", callback=callback,
                      options={"maxcor": 10, "maxiter": 10**6, "maxfun": 10**7,
                               "gtol": 0.0, "ftol": 0.0})
    f, g = objective_and_gradient(result.x)
    return result, f, np.linalg.norm(g)


times = []
for _ in range(REPS):
    t0 = time.perf_counter()
    result, f, gnorm = run()
    times.append(time.perf_counter() - t0)
print(f"variables {len(p0)}")
print(f"message {result.message}")
print(f"iterations {result.nit}")
print(f"evaluations {result.nfev}")
print(f"final objective {f:.12g}")
print(f"gradient norm {gnorm:.6e}")
print(f"seconds (median of {REPS}) {sorted(times)[len(times) // 2]:.6f}")
