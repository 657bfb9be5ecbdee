"""Transparent huge pages for the host's large buffers: an entry script re-executes itself once
with glibc's ``glibc.malloc.hugetlb=1`` tunable, before JAX starts.

Why. XLA:CPU allocates a step's large temporaries (activations, their gradients, attention
weights: tens to hundreds of MiB at a batch of 64 images of 28x28) with malloc, and glibc
serves every block above its mmap threshold (32 MiB at most) with a fresh anonymous mapping
and unmaps it on free. Each step therefore faults its temporaries in again, 4 KiB page by
4 KiB page, the kernel zeroing each page: the levels table's PixelSNAIL benchmark took 4.4
million page faults and ~23% of its CPU time in the kernel. With the tunable, malloc asks
for 2 MiB transparent huge pages on those mappings (madvise(MADV_HUGEPAGE)), which the
kernel's default THP mode ("madvise") grants: 512 times fewer faults.

Measured (experiments/benchmark.py --steps=10 --sampling=false, the 2-core AMD EPYC of this
project, quiet, 2026-12-07, train / evaluation images/s, without -> with): PixelSNAIL
(levels_table.py:pixelsnail, 2x2 convolutions then) 103 -> 139 / 222 -> 378; Gated PixelCNN, categorical
(levels_table.py:gated_categorical) 117 -> 154 / 448 -> 536; PixelCNN++ 65 -> 81 / 225 -> 247;
the quickstart 128 -> 173 / 465 -> 574; page faults 4.4 M -> 0.2 M (PixelSNAIL). The quickstart's
results.json was the same to the bit with and without, but for its wall time (training 149 s against
178 s, 2026-12-08).

glibc reads GLIBC_TUNABLES once, when a process starts, so the setting cannot be made from
inside a running interpreter: ``reexec()``, the first statement of each entry script's
``__main__`` block, replaces the process by the same command line (same PID, arguments,
stdin/stdout) with the tunable added. It does nothing (and the run goes on as before) when:
the platform is not Linux with glibc >= 2.35 (older glibc has no such tunable), the kernel
has no transparent huge pages or they are off ("never"), GLIBC_TUNABLES already names
glibc.malloc.hugetlb (the user's own choice, and the guard against a second exec), or
DGM_JAX_HUGE_PAGES=0 (the opt-out). Library code never re-executes anything: importing
dgm_jax (a notebook, pytest) leaves the process as it is.
"""
from __future__ import annotations

import os
import sys

TUNABLE = "glibc.malloc.hugetlb"
SETTING = f"{TUNABLE}=1"            # 1: madvise(MADV_HUGEPAGE) on malloc's mappings (2: hugetlbfs pages)
OPT_OUT = "DGM_JAX_HUGE_PAGES"       # =0: leave malloc alone
THP_MODE_FILE = "/sys/kernel/mm/transparent_hugepage/enabled"
MIN_GLIBC = (2, 35)                  # the first glibc with glibc.malloc.hugetlb


def glibc_version() -> tuple[int, int] | None:
    """(major, minor) of the C library when it is glibc, else None (musl, macOS, Windows)."""
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()     # e.g. "glibc 2.36"
        major, minor = version.split(".")[:2]
        return (int(major), int(minor)) if name == "glibc" else None
    except (AttributeError, ValueError, OSError):
        return None


def thp_mode(path: str = THP_MODE_FILE) -> str | None:
    """The kernel's transparent-huge-page mode ("always", "madvise" or "never"), None without THP."""
    try:
        text = open(path, encoding="ascii").read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else None


def needed(environ=os.environ, platform: str = sys.platform, glibc=None, mode=None) -> bool:
    """Whether reexec() would re-execute (the arguments stand in for this machine in tests)."""
    if environ.get(OPT_OUT, "") == "0" or TUNABLE in environ.get("GLIBC_TUNABLES", ""):
        return False
    if not platform.startswith("linux"):
        return False
    glibc = glibc_version() if glibc is None else glibc
    mode = thp_mode() if mode is None else mode
    return glibc is not None and glibc >= MIN_GLIBC and mode in ("always", "madvise")


def tunables_with_setting(current: str) -> str:
    """GLIBC_TUNABLES with SETTING added (colon-separated, the user's other tunables kept)."""
    return f"{current}:{SETTING}" if current else SETTING


def reexec() -> None:
    """Re-executes this command line with glibc.malloc.hugetlb=1 when needed(); returns otherwise."""
    if not needed():
        return
    env = dict(os.environ, GLIBC_TUNABLES=tunables_with_setting(os.environ.get("GLIBC_TUNABLES", "")))
    argv = list(getattr(sys, "orig_argv", [sys.executable] + sys.argv))   # with interpreter options (-u, -X ...)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable] + argv[1:], env)
    except OSError:      # an interpreter that cannot be re-executed: run on without the setting
        return
