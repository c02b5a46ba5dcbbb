"""What a measurement ran on: the CPU model, the JAX devices and the package versions.

The study manifest (`study.environment`) and the timing and bench outputs (`describe`) record
these with their results, each in its own committed layout.
"""

import importlib.metadata
import os
import pathlib
import platform

import jax

from dropout_study import allocator, xla_options

NOT_INSTALLED = "not installed"
TIMING_PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "ml-collections", "matplotlib")


def cpu_model() -> str:
    """The first CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def versions(packages) -> dict[str, str]:
    """{package: installed version, or 'not installed'}."""
    found = {}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = NOT_INSTALLED
    return found


def device_kinds() -> list[str]:
    """The kind of every JAX device, e.g. ['cpu'] or ['NVIDIA H200']."""
    return [d.device_kind for d in jax.devices()]


def describe(packages=TIMING_PACKAGES) -> dict:
    """What ran a timing or bench: CPU, cores, memory, OS, allocator, XLA options, versions."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "os": platform.platform(),
        "backend": jax.default_backend(),
        "devices": device_kinds(),
        "allocator": allocator.active(),
        "xla_options": xla_options.active(),
        "default_prng_impl": jax.config.jax_default_prng_impl,
        "threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
        "load_average": os.getloadavg(),
        "versions": {"python": platform.python_version(), **versions(packages)},
    }


def summary_line() -> str:
    """`describe()` in one line, for the READMEs that bench and runs_per_hour write."""
    m = describe()
    return (
        f"{m['cpu']}, {m['cores']} CPUs, {m['memory_gib']} GiB; {m['backend']} "
        f"({', '.join(m['devices'])}); Python {m['versions']['python']}, JAX {m['versions']['jax']}"
    )
