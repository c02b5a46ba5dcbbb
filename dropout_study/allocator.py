"""Runs the project's commands under tcmalloc when the machine has it.

With glibc malloc, memory-bound XLA CPU ops (dropout masks, copies, large activations) run several
times slower than with tcmalloc, whose shared library must be preloaded before the process starts.
`use_tcmalloc()` re-executes the current command once with `LD_PRELOAD` set. Install the library
with `apt-get install libtcmalloc-minimal4`; set `DROPOUT_STUDY_ALLOCATOR=system` to opt out.
"""

import ctypes.util
import glob
import os
import sys

_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",
)


def tcmalloc_path():
    """The tcmalloc shared library on this machine, or None."""
    for path in _CANDIDATES:
        if os.path.exists(path):
            return path
    found = ctypes.util.find_library("tcmalloc_minimal") or ctypes.util.find_library("tcmalloc")
    if found:
        matches = glob.glob(f"/usr/lib*/**/{found}", recursive=True)
        return matches[0] if matches else None
    return None


def active():
    """Which allocator this process runs with: 'tcmalloc' or 'system'."""
    return "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "system"


def use_tcmalloc():
    """Re-executes `python -m <module> ...` under tcmalloc if available and not yet preloaded."""
    if os.environ.get("DROPOUT_STUDY_ALLOCATOR", "tcmalloc") == "system" or active() == "tcmalloc":
        return
    path = tcmalloc_path()
    if path is None:
        return
    env = dict(os.environ, LD_PRELOAD=":".join(filter(None, [path, os.environ.get("LD_PRELOAD")])))
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
