"""Compares examples/softmax_digits.opt with scikit-learn's multinomial logistic regression
at the same regularisation (not run in CI).

catopt minimises (1/n) sum_i CE_i + (lambda/2) |W|^2 (bias unpenalised, n = 1200,
lambda = 0.001); scikit-learn minimises C sum_i CE_i + (1/2) |W|^2, the same problem
scaled by C = 1 / (lambda n).

Usage (from the repository root):
    catopt run examples/softmax_digits.opt --all --output /tmp/softmax_digits.json
    python3 bench/reference/softmax_digits_sklearn.py /tmp/softmax_digits.json
Needs numpy and scikit-learn (`python3 -m venv /tmp/skl && /tmp/skl/bin/pip install
scikit-learn numpy`).
"""

import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

N, LAMBDA = 1200, 0.001


def load(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return data[:, :64], data[:, 64:74], data[:, 74].astype(int)


def objective(X, Y, W, b):
    Z = X @ W + b
    m = Z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True)))[:, 0]
    return (lse - (Y * Z).sum(axis=1)).mean() + LAMBDA / 2 * (W**2).sum()


def main():
    Xtr, Ytr, ytr = load("examples/data/digits_train.csv")
    Xte, _, yte = load("examples/data/digits_test.csv")
    kwargs = dict(C=1.0 / (LAMBDA * N), tol=1e-10, max_iter=10000)
    try:
        model = LogisticRegression(multi_class="multinomial", **kwargs)
    except TypeError:  # scikit-learn >= 1.7 dropped the argument (multinomial is the default)
        model = LogisticRegression(**kwargs)
    model.fit(Xtr, ytr)
    W_skl, b_skl = model.coef_.T, model.intercept_
    print(f"scikit-learn {__import__('sklearn').__version__}: objective "
          f"{objective(Xtr, Ytr, W_skl, b_skl):.10f}, train accuracy "
          f"{(model.predict(Xtr) == ytr).mean():.4f}, test accuracy "
          f"{(model.predict(Xte) == yte).mean():.4f}")
    if len(sys.argv) > 1:
        values = json.load(open(sys.argv[1]))["values"]
        W, b = np.array(values["W"]), np.array(values["b"])
        accuracy = lambda X, y: ((X @ W + b).argmax(axis=1) == y).mean()
        print(f"catopt: objective {objective(Xtr, Ytr, W, b):.10f}, train accuracy "
              f"{accuracy(Xtr, ytr):.4f}, test accuracy {accuracy(Xte, yte):.4f}")
        agree = ((Xte @ W + b).argmax(axis=1) == model.predict(Xte)).mean()
        print(f"test predictions that agree: {agree:.4f}; max |W - W_skl| = "
              f"{np.abs(W - W_skl).max():.2e}")


if __name__ == "__main__":
    main()
