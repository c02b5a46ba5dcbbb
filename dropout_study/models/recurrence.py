"""LSTM recurrence with only h_{t-1} @ U and the gates inside the time loop, and its backward pass.

The input projection of every time step (x @ W + b) is one big matmul before the loop. The
hand-written backward keeps only dh, dc and dz @ U^T in the reverse loop: the forward loop already
stores the gate derivatives it needs, and dU = sum_t h_{t-1}^T dz_t is one big matmul after it.
Both loops unroll UNROLL steps per iteration (`python -m dropout_study.bench --models=imdb_rnn`
times the step).
Gates are in Keras / Flax order (i, f, g, o); sigmoid(z) = (1 + tanh(z / 2)) / 2, so all four
gates are a single tanh over (N, 4H). Time-major throughout: xp (T, N, 4H)."""

import jax
import jax.numpy as jnp

UNROLL = 4  # time steps per loop iteration: fewer iterations, ops scheduled across steps


def _gate_affine(hidden: int, dtype) -> tuple[jax.Array, jax.Array]:
    """(scale, shift), each (4H,): gates = tanh(z * scale) * scale + shift (sigmoid, tanh for g)."""
    half, one, zero = (jnp.full((hidden,), v, dtype) for v in (0.5, 1.0, 0.0))
    return jnp.concatenate([half, half, one, half]), jnp.concatenate([half, half, zero, half])


def _run(xp: jax.Array, kernel: jax.Array, mask: jax.Array | None, keep_residuals: bool):
    """Forward loop: hs (T, N, H), or (hs, *backward factors) if `keep_residuals`.

    The backward factors are what the reverse loop reads per step, so it needs no pass over the
    gates of its own: dgate (T, N, 4H) = d gates / d(c, c, c, h) per gate slot, dc_dh (T, N, H) =
    o * tanh'(c), and the forget gate f (T, N, H).
    """
    _, batch, width = xp.shape
    scale, shift = _gate_affine(width // 4, xp.dtype)

    def step(carry, xp_t):
        h, c_prev = carry
        h_in = h if mask is None else h * mask
        gates = jnp.tanh((xp_t + h_in @ kernel) * scale) * scale + shift  # (N, 4H)
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        c = f * c_prev + i * g
        tanh_c = jnp.tanh(c)
        h = o * tanh_c
        if not keep_residuals:
            return (h, c), h
        # dz_i = dc * g * i(1-i), dz_f = dc * c_prev * f(1-f), dz_g = dc * i * (1-g^2),
        # dz_o = dh * tanh(c) * o(1-o): the four factors, in gate order.
        dgate = jnp.concatenate(
            [g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tanh_c * o * (1 - o)], axis=-1
        )
        return (h, c), (h, dgate, o * (1 - tanh_c * tanh_c), f)

    zeros = jnp.zeros((batch, width // 4), xp.dtype)
    _, out = jax.lax.scan(step, (zeros, zeros), xp, unroll=UNROLL)
    return out


@jax.custom_vjp
def lstm_recurrence(xp: jax.Array, kernel: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Hidden states hs (T, N, H) of an LSTM from zero state.

    xp: (T, N, 4H) input projections x_t @ W + b; kernel: recurrent U (H, 4H); mask: None or the
    variational recurrent mask (N, H), already scaled, applied to h_{t-1} at every step.
    """
    return _run(xp, kernel, mask, keep_residuals=False)


def _fwd(xp, kernel, mask):
    hs, *factors = _run(xp, kernel, mask, keep_residuals=True)
    return hs, (hs, *factors, kernel, mask)


def _bwd(residuals, d_hs):
    hs, dgate, dc_dh, forget, kernel, mask = residuals
    steps, batch, hidden = hs.shape
    h_prev = jnp.concatenate([jnp.zeros((1, batch, hidden), hs.dtype), hs[:-1]])  # h_{t-1}
    kernel_t = kernel.T  # (4H, H), transposed once rather than in every step

    def step(carry, inputs):
        dh_rec, dc_next, d_mask = carry
        d_h_t, dgate_t, dc_dh_t, f_t, *h_prev_t = inputs
        dh = d_h_t + dh_rec
        dc = dc_next + dh * dc_dh_t
        dz = jnp.concatenate([dc, dc, dc, dh], axis=-1) * dgate_t  # the o gate takes dh, not dc
        d_h_in = dz @ kernel_t  # (N, H)
        if mask is None:
            return (d_h_in, dc * f_t, d_mask), dz
        return (d_h_in * mask, dc * f_t, d_mask + d_h_in * h_prev_t[0]), dz

    zeros = jnp.zeros((batch, hidden), hs.dtype)
    carry = (zeros, zeros, None if mask is None else zeros)
    inputs = (d_hs, dgate, dc_dh, forget) + (() if mask is None else (h_prev,))
    (_, _, d_mask), dz = jax.lax.scan(step, carry, inputs, reverse=True, unroll=UNROLL)
    h_in_prev = h_prev if mask is None else h_prev * mask
    # dU = sum_t h_in_{t-1}^T dz_t as one 2-D matmul (XLA:CPU is slow on the 3-D contraction).
    d_kernel = h_in_prev.reshape(steps * batch, hidden).T @ dz.reshape(steps * batch, 4 * hidden)
    return dz, d_kernel, d_mask


lstm_recurrence.defvjp(_fwd, _bwd)
