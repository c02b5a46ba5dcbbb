"""Convolution with stride 1 as XLA's convolution or as one matmul over patches (im2col).

Stacking the shifted views of the input into patches (N, *out, k*C) turns forward and backward
into plain matmuls, at the cost of k times the input's memory (k = kernel elements). That pays
under XLA:CPU's default compile options, which run 2-D convolutions and above all their two
backward convolutions through slow kernels. Under the project's options
(`dropout_study.xla_options`, which every step is compiled with) XLA:CPU's own convolution is the
faster, as on GPUs and TPUs, so `impl="auto"` is XLA's convolution everywhere; "im2col" stays for
comparison (`--config.model.conv_impl=im2col`; a run's summary.json has its examples/s). Both
share `nn.Conv`'s parameters (kernel (*kernel_size, C, F), bias (F,)): checkpoints move freely.
"""

import itertools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dropout_study import errors

IMPLS = ("auto", "xla", "im2col")
PADDINGS = ("SAME", "VALID")


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
            spatial = "DHW"[3 - len(ks) :]  # 1-D: W, 2-D: HW, 3-D: DHW
            dims = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
            y = jax.lax.conv_general_dilated(
                x, kernel, (1,) * len(ks), "VALID", dimension_numbers=dims
            )
        return y + bias
