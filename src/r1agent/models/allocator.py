"""Let glibc's malloc reuse freed tensor memory instead of asking the kernel for fresh pages every time.

glibc serves an allocation over its mmap threshold (128 KB at first) with a fresh ``mmap`` and gives it back
with ``munmap`` when freed, and it hands the top of its heap back (``trim``) once more than a small amount is
free there. A forward pass over a prompt allocates and frees a few hundred tensors of 1-10 MB a batch (the
MLP's activations alone are 1600 x 1536 bf16 values for four 400-token prompts), so every one of them starts
on zeroed pages the kernel maps one page fault at a time, and on a virtual machine a fault costs microseconds.
With the mmap threshold at glibc's maximum (32 MB) such tensors come from the heap, and with a trim threshold
of 64 MB freed memory stays there for the next ones until 64 MB of it are free at the top of the heap (glibc
then returns all but a small pad): on the 2-core Xeon VM, prefilling four 400-token prompts took
0.85-0.90 s against 1.09-1.18 s with glibc's defaults, and peak memory did not move (one-off probe, pairs
alternating; ``benchmarks/concurrency.py`` and ``benchmarks/turn.py`` measure it through the graph, see
docs/performance.md). A larger trim threshold (1 GB, 4 GB) was slower again in the same probe.

It changes the allocator of the whole process, so it is applied where the process is composed
(:func:`r1agent.deps.build_deps`), and ``R1AGENT_MALLOC_REUSE=0`` leaves glibc's defaults alone. Other C
libraries (musl, macOS) are left as they are.
"""

from __future__ import annotations

import ctypes

MMAP_THRESHOLD = 32 << 20
"""Allocations up to this size come from the heap (glibc's largest allowed value on 64-bit)."""
TRIM_THRESHOLD = 64 << 20
"""Free memory that may pile up at the top of a heap, kept for reuse, before glibc returns it to the kernel."""
_M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3


def reuse_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Set glibc's mmap and trim thresholds for this process; False (and nothing changed) where libc is not glibc.

    Setting either threshold turns off glibc's own adjustment of both, so both are always set together.
    """
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
    except (OSError, TypeError):  # Windows: no such handle
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False
    # mallopt returns 1 on success, 0 for a value it refuses.
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )
