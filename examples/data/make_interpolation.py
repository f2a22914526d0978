"""Makes interpolation.csv for examples/sgd_interpolation.opt: a consistent least-squares
problem (Mishkin, Pilanci, Schmidt 2024, "Faster convergence of stochastic accelerated
gradient descent under interpolation"). Python 3, standard library only:
`python3 make_interpolation.py`, run in this folder.

A is 200 x 50 with entries N(0, 1) times a column scale s_j = 0.3^(j / 49) (from 1 down to
0.3, so that mu / L is small), rounded to 6 significant digits; x* has entries N(0, 1);
b = A x* computed from the rounded A (math.fsum) and written with 17 significant digits, so
the problem interpolates: every row is fitted exactly at x*, f(x*) = 0 up to rounding.
Columns a0..a49, b; seed 2024 (Python's random.Random, Mersenne Twister: the same file on
every machine).

With f(x) = (1/n) sum_i f_i(x), f_i(x) = (a_i . x - b_i)^2 / 2 and one row drawn uniformly
per step (`batch = 1`, `sampling = replace`), the script prints the constants the paper's
step size needs:
  L     = lambda_max(H), mu = lambda_min(H), H = A^T A / n   (f is L-smooth, mu-strongly convex)
  L_max = max_i |a_i|^2                                       (each f_i is L_max-smooth)
  rho   = the strong growth constant, the least rho with E |grad f_i(x)|^2 <= rho |grad f(x)|^2
          for all x: with e = x - x*, E |grad f_i|^2 = e^T M e, M = (1/n) sum_i |a_i|^2 a_i a_i^T,
          and |grad f|^2 = e^T H^2 e, so rho = lambda_max(H^-1 M H^-1);
          the paper's bound for this sampling is rho <= L_max / mu.
The step of both methods is eta = 1 / (rho L) (the paper's choice for SGD and stochastic AGD
under strong growth); with every row per step (batch = 200) rho = 1 and eta = 1 / L.
Eigenvalues by cyclic Jacobi rotations.
"""

import math
import random

N, D, SEED, SMALLEST_SCALE = 200, 50, 2024, 0.3


def jacobi_eigenvalues(matrix):
    """The eigenvalues and eigenvectors (columns) of a symmetric matrix."""
    n = len(matrix)
    a = [row[:] for row in matrix]
    v = [[float(i == j) for j in range(n)] for i in range(n)]
    for _ in range(100):
        off = sum(a[i][j] ** 2 for i in range(n) for j in range(n) if i != j)
        if off <= 1e-30 * sum(a[i][i] ** 2 for i in range(n)):
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                if a[p][q] == 0.0:
                    continue
                theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                t = math.copysign(1.0, theta) / (abs(theta) + math.sqrt(theta * theta + 1))
                c = 1 / math.sqrt(t * t + 1)
                s = t * c
                for k in range(n):
                    a[k][p], a[k][q] = c * a[k][p] - s * a[k][q], s * a[k][p] + c * a[k][q]
                for k in range(n):
                    a[p][k], a[q][k] = c * a[p][k] - s * a[q][k], s * a[p][k] + c * a[q][k]
                for k in range(n):
                    v[k][p], v[k][q] = c * v[k][p] - s * v[k][q], s * v[k][p] + c * v[k][q]
    return [a[i][i] for i in range(n)], v


def main():
    rng = random.Random(SEED)
    scale = [SMALLEST_SCALE ** (j / (D - 1)) for j in range(D)]
    a = [[float("%.6g" % (rng.gauss(0, 1) * scale[j])) for j in range(D)] for _ in range(N)]
    x_star = [rng.gauss(0, 1) for _ in range(D)]
    b = [math.fsum(aij * xj for aij, xj in zip(row, x_star)) for row in a]
    with open("interpolation.csv", "w") as out:
        out.write(",".join([f"a{j}" for j in range(D)] + ["b"]) + "\n")
        for row, bi in zip(a, b):
            out.write(",".join(["%.6g" % v for v in row] + [repr(bi)]) + "\n")

    h = [[math.fsum(r[p] * r[q] for r in a) / N for q in range(D)] for p in range(D)]
    norms = [math.fsum(v * v for v in r) for r in a]
    m = [[math.fsum(w * r[p] * r[q] for w, r in zip(norms, a)) / N for q in range(D)]
         for p in range(D)]
    lam, vec = jacobi_eigenvalues(h)
    big_l, mu, l_max = max(lam), min(lam), max(norms)
    h_inv = [[sum(vec[p][k] * vec[q][k] / lam[k] for k in range(D)) for q in range(D)]
             for p in range(D)]
    t = [[sum(h_inv[p][k] * m[k][q] for k in range(D)) for q in range(D)] for p in range(D)]
    r = [[sum(t[p][k] * h_inv[k][q] for k in range(D)) for q in range(D)] for p in range(D)]
    rho = max(jacobi_eigenvalues([[(r[p][q] + r[q][p]) / 2 for q in range(D)]
                                  for p in range(D)])[0])
    print(f"wrote interpolation.csv: {N} x {D}, seed {SEED}")
    print(f"L = {big_l:.6g}, mu = {mu:.6g}, L / mu = {big_l / mu:.6g}")
    print(f"L_max = {l_max:.6g}, rho = {rho:.6g} (bound L_max / mu = {l_max / mu:.6g})")
    print(f"batch 1:   eta = 1 / (rho L) = {1 / (rho * big_l):.6g}, "
          f"mu / (rho L) = {mu / (rho * big_l):.6g}")
    print(f"batch 200: eta = 1 / L = {1 / big_l:.6g}, mu / L = {mu / big_l:.6g}")


if __name__ == "__main__":
    main()
