"""Runs the project's commands under a fast malloc: tcmalloc where installed, else pip's mimalloc.

With glibc malloc, memory-bound XLA CPU ops (dropout masks, copies, large activations) run several
times slower than with tcmalloc or mimalloc, whose shared library must be preloaded before the
process starts. `preload()` re-executes the current command once with `LD_PRELOAD` set.
mimalloc comes with `pip install` (the `cmeel-mimalloc` wheel ships `libmimalloc.so`); tcmalloc
needs `apt-get install libtcmalloc-minimal4`. `DROPOUT_STUDY_ALLOCATOR` picks one: `auto`
(default: the first of PREFERENCE that is present), `tcmalloc`, `mimalloc` or `system` (glibc).
"""

import ctypes.util
import glob
import importlib.metadata
import os
import sys

ENV = "DROPOUT_STUDY_ALLOCATOR"
SYSTEM = "system"
PREFERENCE = ("tcmalloc", "mimalloc")  # compare: python -m dropout_study.bench --allocators=...
_TCMALLOC_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",
)


def tcmalloc_path():
    """The tcmalloc shared library on this machine, or None."""
    for path in _TCMALLOC_CANDIDATES:
        if os.path.exists(path):
            return path
    found = ctypes.util.find_library("tcmalloc_minimal") or ctypes.util.find_library("tcmalloc")
    if found:
        matches = glob.glob(f"/usr/lib*/**/{found}", recursive=True)
        return matches[0] if matches else None
    return None


def mimalloc_path():
    """libmimalloc.so of the installed cmeel-mimalloc wheel, or None."""
    try:
        path = importlib.metadata.distribution("cmeel-mimalloc").locate_file(
            "cmeel.prefix/lib/libmimalloc.so"
        )
    except importlib.metadata.PackageNotFoundError:
        return None
    return str(path) if os.path.exists(path) else None


PATHS = {"tcmalloc": tcmalloc_path, "mimalloc": mimalloc_path}


def active():
    """Which allocator this process runs with: 'tcmalloc', 'mimalloc' or 'system'."""
    for library in os.environ.get("LD_PRELOAD", "").split(":"):
        for name in PATHS:
            if name in os.path.basename(library):
                return name
    return SYSTEM


def choose(wanted):
    """(name, library path or None) for a DROPOUT_STUDY_ALLOCATOR value; ValueError if unknown."""
    if wanted == SYSTEM:
        return SYSTEM, None
    if wanted == "auto":
        for name in PREFERENCE:
            path = PATHS[name]()
            if path:
                return name, path
        return SYSTEM, None
    if wanted not in PATHS:
        raise ValueError(
            f"{ENV}={wanted!r} is not an allocator; use auto, {', '.join(PATHS)} or {SYSTEM}."
        )
    path = PATHS[wanted]()
    if path is None:
        raise ValueError(
            f"{ENV}={wanted} but its library is not installed. Fix: "
            + (
                "apt-get install libtcmalloc-minimal4"
                if wanted == "tcmalloc"
                else "pip install cmeel-mimalloc"
            )
            + f", or set {ENV}=auto."
        )
    return wanted, path


def preload():
    """Re-executes `python -m <module> ...` under the chosen allocator unless it is preloaded."""
    name, path = choose(os.environ.get(ENV, "auto"))
    if path is None or active() == name:
        return
    others = [
        library
        for library in os.environ.get("LD_PRELOAD", "").split(":")
        if library and not any(n in os.path.basename(library) for n in PATHS)
    ]
    env = dict(os.environ, LD_PRELOAD=":".join([path, *others]))
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
