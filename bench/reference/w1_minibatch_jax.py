#!/usr/bin/env python3
"""Reference of benchmark W1 with minibatches (bench/w1_minibatch.opt) in JAX.

The model of w1_jax.py (per task t: pred = tanh(X_t W + b) v_t + c_t, loss_t = mean over the
minibatch of (pred - y_t)^2; objective sum_t loss_t), gradient descent with lr = 0.05, where
each step each task draws 64 of its 512 rows: shuffled epochs, as catopt's `sampling =
shuffle` (each epoch a random permutation of the rows cut into 8 batches), the permutation of
(task, epoch) drawn with `jax.random.permutation` inside the jitted loop. The draws are not
catopt's (another generator), so the objectives agree only statistically; the point is the
time per step. Prints the median seconds per step over REPS timed runs.
Usage: w1_minibatch_jax.py DATADIR [T H STEPS REPS BATCH]
"""
import sys, time, numpy as np
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
data = sys.argv[1]
T, H, STEPS, REPS, B = (int(a) for a in sys.argv[2:7]) if len(sys.argv) > 6 else (8, 32, 200, 5, 64)
Xs = jnp.stack([jnp.asarray(np.loadtxt(f"{data}/task{t}_x.csv", delimiter=",")) for t in range(T)])
ys = jnp.stack([jnp.asarray(np.loadtxt(f"{data}/task{t}_y.csv", delimiter=",")) for t in range(T)])
n, d = Xs.shape[1], Xs.shape[2]
per_epoch = n // B
W0 = 0.01 * ((np.arange(d * H).reshape(d, H) % 7) - 3.0)
params0 = (jnp.asarray(W0), jnp.zeros(H), jnp.full((T, H), 0.1), jnp.zeros(T))
key = jax.random.PRNGKey(1)

def total(p, X, y):
    W, b, V, c = p
    hidden = jnp.tanh(jnp.einsum("tnd,dh->tnh", X, W) + b)
    pred = jnp.einsum("tnh,th->tn", hidden, V) + c[:, None]
    return jnp.sum(jnp.mean((pred - y) ** 2, axis=1))

grad = jax.grad(total)

def rows(k):
    epoch, within = k // per_epoch, k % per_epoch
    def task_rows(t):
        perm = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, t), epoch), n)
        return jax.lax.dynamic_slice(perm, (within * B,), (B,))
    return jax.vmap(task_rows)(jnp.arange(T))

@jax.jit
def run(p):
    def step(k, p):
        idx = rows(k)
        X = jnp.take_along_axis(Xs, idx[:, :, None], axis=1)
        y = jnp.take_along_axis(ys, idx, axis=1)
        g = grad(p, X, y)
        return tuple(x - 0.05 * gx for x, gx in zip(p, g))
    return jax.lax.fori_loop(0, STEPS, step, p)

p = run(params0); jax.block_until_ready(p)  # compile + warm-up
times = []
for _ in range(REPS):
    t0 = time.perf_counter(); p = run(params0); jax.block_until_ready(p); times.append(time.perf_counter() - t0)
print(f"initial objective {float(total(params0, Xs, ys)):.12g}")
print(f"final objective (full data) {float(total(p, Xs, ys)):.12g}")
print(f"seconds per step (median of {REPS}) {sorted(times)[REPS // 2] / STEPS:.6g}")
