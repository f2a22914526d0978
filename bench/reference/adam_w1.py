#!/usr/bin/env python3
"""Reference for Adam on benchmark W1 (multitask shared-trunk regression): optax.adam in JAX.

The model, data, objective and initial point are W1's (see README.md and w1_jax.py); the
method is optax.adam(LR, b1 = 0.9, b2 = 0.999, eps = 1e-8), catopt's
`adam(lr = LR)` (same defaults; optax's eps_root is 0), full batch, STEPS steps, the whole
loop under jax.jit (lax.fori_loop), float64.
Prints the initial and final objectives and the median seconds per step over REPS timed runs.
Usage: adam_w1.py DATADIR [T H STEPS REPS LR]
"""
import sys, time, numpy as np
import jax, jax.numpy as jnp
import optax
jax.config.update("jax_enable_x64", True)
data = sys.argv[1]
T, H, STEPS, REPS = (int(a) for a in sys.argv[2:6]) if len(sys.argv) > 5 else (8, 32, 200, 5)
LR = float(sys.argv[6]) if len(sys.argv) > 6 else 0.01
Xs = jnp.stack([jnp.asarray(np.loadtxt(f"{data}/task{t}_x.csv", delimiter=",")) for t in range(T)])
ys = jnp.stack([jnp.asarray(np.loadtxt(f"{data}/task{t}_y.csv", delimiter=",")) for t in range(T)])
d = Xs.shape[2]
W0 = 0.01 * ((np.arange(d * H).reshape(d, H) % 7) - 3.0)
params0 = (jnp.asarray(W0), jnp.zeros(H), jnp.full((T, H), 0.1), jnp.zeros(T))

def total(p):
    W, b, V, c = p
    hidden = jnp.tanh(jnp.einsum("tnd,dh->tnh", Xs, W) + b)
    pred = jnp.einsum("tnh,th->tn", hidden, V) + c[:, None]
    return jnp.sum(jnp.mean((pred - ys) ** 2, axis=1))

optimizer = optax.adam(LR, b1=0.9, b2=0.999, eps=1e-8)
grad = jax.grad(total)

@jax.jit
def run(p):
    def step(_, carry):
        p, state = carry
        updates, state = optimizer.update(grad(p), state, p)
        return optax.apply_updates(p, updates), state
    return jax.lax.fori_loop(0, STEPS, step, (p, optimizer.init(p)))[0]

p = run(params0); jax.block_until_ready(p)  # compile + warm-up
times = []
for _ in range(REPS):
    t0 = time.perf_counter(); p = run(params0); jax.block_until_ready(p); times.append(time.perf_counter() - t0)
print(f"initial objective {float(total(params0)):.12g}")
print(f"final objective {float(total(p)):.12g}")
print(f"seconds per step (median of {REPS}) {sorted(times)[REPS // 2] / STEPS:.6g}")
