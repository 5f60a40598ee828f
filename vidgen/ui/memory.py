"""Cap the number of glibc malloc arenas in the app's process (`mallopt(M_ARENA_MAX, n)`).

Why: Gradio runs each step of a generation in whichever worker thread is free, and glibc gives
threads their own arenas (up to 8 per core). Every arena keeps the memory a run freed in it as its
own free space, so a server's RSS creeps up long after its live heap has stopped growing: over 200
generations of the leak check the heap in use stayed flat (+0.6 MB) while the arenas' free space
grew by 35 MB, and RSS with it. Two arenas let threads reuse each other's freed memory; they cut that
growth to about a third (benchmarks/results/leak.md). One generation runs at a time, so the extra
lock contention costs nothing measurable. This is the setting behind the MALLOC_ARENA_MAX=2
advice for threaded Python servers; an explicit MALLOC_ARENA_MAX in the environment wins.

Without glibc (macOS, musl, Windows) `limit_malloc_arenas` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's <malloc.h>
APP_ARENAS = 2


def limit_malloc_arenas(arenas: int = APP_ARENAS) -> bool:
    """At most `arenas` malloc arenas from now on; True if glibc accepted it. Call it before the
    server starts its threads: glibc fixes the cap once the process has made 8 arenas."""
    if "MALLOC_ARENA_MAX" in os.environ:  # the operator's choice, applied by glibc at start-up
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not loadable, or a C library without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_ARENA_MAX, arenas) == 1
