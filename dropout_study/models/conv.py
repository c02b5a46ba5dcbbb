"""Convolution with stride 1 as XLA's convolution or as one matmul over patches (im2col).

Stacking the shifted views of the input into patches (N, *out, k*C) turns forward and backward
into plain matmuls, at the cost of k times the input's memory (k = kernel elements). That pays
under XLA:CPU's default compile options, which run 2-D convolutions and above all their two
backward convolutions through slow kernels. Under the project's options
(`dropout_study.xla_options`, which every step is compiled with) XLA:CPU's own convolution is the
faster, as on GPUs and TPUs, so `impl="auto"` is XLA's convolution everywhere; "im2col" stays for
comparison (`--config.model.conv_impl=im2col`; a run's summary.json has its examples/s). Both
share `nn.Conv`'s parameters (kernel (*kernel_size, C, F), bias (F,)): checkpoints move freely.

On XLA:CPU the kernel gradient of XLA's convolution is itself a convolution over the input
transposed to (C, *spatial, N). XLA writes that transpose in one pass that reads N images a
power-of-two stride apart when the image is 32x32x64, which thrashes the cache (44 ms for the
first VGG block's activations); `kernel_grad` transposes TRANSPOSE_CHUNK images at a time instead
(`python -m dropout_study.bench --models=cifar10_vgg` times the step).
"""

import itertools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dropout_study import errors

IMPLS = ("auto", "xla", "im2col")
PADDINGS = ("SAME", "VALID")
TRANSPOSE_CHUNK = 8  # images per block of the kernel gradient's input transpose on XLA:CPU


def uses_im2col(impl: str) -> bool:
    """Whether `impl` means im2col ("auto" is XLA's convolution: see the module docstring)."""
    errors.check_choice("conv_impl", impl, IMPLS)
    return impl == "im2col"


def same_padding(kernel_size: Sequence[int]) -> list[tuple[int, int]]:
    """(low, high) padding per spatial axis that keeps the size, as XLA's 'SAME' for stride 1."""
    return [((k - 1) // 2, k // 2) for k in kernel_size]


def im2col(x: jax.Array, kernel_size: Sequence[int]) -> jax.Array:
    """Patches (N, *out, prod(kernel_size) * C) of x (N, *spatial, C), 'VALID', offsets row-major.

    Channel index of the patch: (flat kernel offset) * C + c, matching kernel.reshape(-1, F).
    """
    out = [n - k + 1 for n, k in zip(x.shape[1:-1], kernel_size, strict=True)]
    views = [
        x[(slice(None), *(slice(o, o + n) for o, n in zip(offset, out, strict=True)))]
        for offset in itertools.product(*(range(k) for k in kernel_size))
    ]
    return views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)


def _dimension_numbers(spatial_axes: int) -> tuple[str, str, str]:
    spatial = "DHW"[3 - spatial_axes :]  # 1-D: W, 2-D: HW, 3-D: DHW
    return f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"


def xla_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """'VALID' stride-1 convolution of x (N, *spatial, C) with kernel (*kernel_size, C, F)."""
    strides, dims = (1,) * (x.ndim - 2), _dimension_numbers(x.ndim - 2)
    return jax.lax.conv_general_dilated(x, kernel, strides, "VALID", dimension_numbers=dims)


def kernel_grad(x: jax.Array, dy: jax.Array, chunk: int = TRANSPOSE_CHUNK) -> jax.Array:
    """d kernel (*kernel_size, C, F) of xla_conv(x, kernel) for output cotangent dy (N, *out, F).

    A convolution of x_t (C, *spatial, N), with N as its features, by dy_t (*out, N, F); x_t is
    built `chunk` images at a time, so that each block of the transpose stays in cache.
    """
    spatial_axes = x.ndim - 2
    spatial = tuple(range(1, spatial_axes + 1))
    to_features_last = (spatial_axes + 1, *spatial, 0)  # (N, *S, C) -> (C, *S, N)
    blocks = [jnp.transpose(x[i : i + chunk], to_features_last) for i in range(0, len(x), chunk)]
    x_t = jnp.concatenate(blocks, axis=-1)
    dy_t = jnp.transpose(dy, (*spatial, 0, spatial_axes + 1))  # (*out, N, F)
    d_kernel_t = xla_conv(x_t, dy_t)  # (C, *kernel_size, F)
    return jnp.transpose(d_kernel_t, (*spatial, 0, spatial_axes + 1))


@jax.custom_vjp
def cpu_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """xla_conv, with `kernel_grad` for the kernel's gradient (XLA's own for the input's)."""
    return xla_conv(x, kernel)


def _cpu_conv_fwd(x, kernel):
    return xla_conv(x, kernel), (x, kernel)


def _cpu_conv_bwd(residuals, dy):
    x, kernel = residuals
    (dx,) = jax.vjp(lambda x: xla_conv(x, kernel), x)[1](dy)
    return dx, kernel_grad(x, dy)


cpu_conv.defvjp(_cpu_conv_fwd, _cpu_conv_bwd)


class Conv(nn.Module):
    """Stride-1 convolution over x (N, *spatial, C) -> (N, *out, features); drop-in for nn.Conv."""

    features: int
    kernel_size: Sequence[int]
    padding: str = "SAME"
    impl: str = "auto"
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros

    def __post_init__(self):
        if not 1 <= len(self.kernel_size) <= 3:
            raise ValueError(f"kernel_size={self.kernel_size!r} must have 1 to 3 spatial axes.")
        errors.check_choice("padding", self.padding, PADDINGS)
        errors.check_choice("conv_impl", self.impl, IMPLS)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ks = tuple(self.kernel_size)
        shape = (*ks, x.shape[-1], self.features)
        kernel = self.param("kernel", self.kernel_init, shape)
        bias = self.param("bias", self.bias_init, (self.features,))
        if self.padding == "SAME":
            x = jnp.pad(x, [(0, 0), *same_padding(ks), (0, 0)])
        if uses_im2col(self.impl):
            patches = im2col(x, ks)  # (N, *out, K); 2-D matmul, so its gradients are 2-D too
            y = patches.reshape(-1, patches.shape[-1]) @ kernel.reshape(-1, self.features)
            y = y.reshape(*patches.shape[:-1], self.features)
        else:
            y = (cpu_conv if jax.default_backend() == "cpu" else xla_conv)(x, kernel)
        return y + bias
