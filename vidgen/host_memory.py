"""Host memory kept by the process, so that XLA's CPU steps stop faulting in fresh pages.

XLA's CPU runtime allocates an executable's temporary buffer on every call and frees it after
(3.3 GB for a DiT-B/2 training step at 2,048 tokens). glibc serves any block over 32 MB with a
fresh mmap and hands it back with munmap, so every step faulted in and zeroed all of it again:
800,000-850,000 page faults and 3-4 s of kernel time per DiT-B/2 step on a 2-core CPU, with the
ops that first touched each page waiting on it. Three malloc settings make the next step
reuse the freed block instead: one arena for every thread (XLA's worker threads otherwise get
arenas of their own, which can serve such a block only by mmap), no mmap, and no trimming of the
heap's top.

The process then holds its peak host memory until it exits: the right trade for a training,
sampling or evaluation run, so the entrypoints call `keep_freed_memory(restart=True)` first, and
importing vidgen never does. By then importing JAX has started threads with arenas of their
own; the entrypoint then restarts itself once with the same settings in GLIBC_TUNABLES, which
glibc reads before any thread starts (a second or two, once). `VIDGEN_HOST_MALLOC=system` keeps
glibc's defaults.
"""

from __future__ import annotations

import ctypes
import os
import sys

from absl import logging

ENV_VAR = 'VIDGEN_HOST_MALLOC'
# mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1))  # -1: never trim (SIZE_MAX)

# The same settings for a process whose threads have already allocated (a notebook kernel),
# read by glibc at start-up: GLIBC_TUNABLES=... jupyter notebook, or ... python script.py.
GLIBC_TUNABLES = 'glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736'

_RESTARTED = 'VIDGEN_HOST_MALLOC_RESTARTED'  # set in the restarted process, so it restarts once at most
_applied = False


def _arena_count(libc: ctypes.CDLL) -> int:
  """How many malloc arenas the process has: glibc's malloc_info(3) lists one <heap> each."""
  libc.tmpfile.restype = ctypes.c_void_p
  for name in ('malloc_info', 'fflush', 'fileno', 'fclose'):
    getattr(libc, name).argtypes = [ctypes.c_int, ctypes.c_void_p] if name == 'malloc_info' else [ctypes.c_void_p]
  stream = libc.tmpfile()
  try:
    libc.malloc_info(0, stream)
    libc.fflush(stream)
    fd = libc.fileno(stream)
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
      chunks.append(chunk)
  finally:
    libc.fclose(stream)
  return b''.join(chunks).count(b'<heap nr=')


def _restart_with_tunables() -> None:
  """Replaces this process with the same command line, GLIBC_TUNABLES holding the settings."""
  tunables = ':'.join(filter(None, [os.environ.get('GLIBC_TUNABLES', ''), GLIBC_TUNABLES]))
  env = dict(os.environ, GLIBC_TUNABLES=tunables, **{_RESTARTED: '1'})
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable] + sys.orig_argv[1:], env)


def keep_freed_memory(*, restart: bool = False) -> bool:
  """Sets glibc's malloc to reuse freed host memory; True when set (now or by an earlier call).

  A thread that has already allocated keeps its own arena, so when any has, nothing can be set
  from inside the process: with `restart` (entrypoints, from their main) the process restarts
  itself with GLIBC_TUNABLES set, once; without it (a notebook) nothing is set (False, with a
  warning that names GLIBC_TUNABLES, the way to set the same from the start). A no-op (False)
  off glibc, or when VIDGEN_HOST_MALLOC=system.
  """
  global _applied
  choice = os.environ.get(ENV_VAR, 'reuse')
  if choice not in ('reuse', 'system'):
    raise ValueError(f'{ENV_VAR}={choice!r}: use "reuse" (the default) or "system" (glibc\'s own settings).')
  if _applied:
    return True
  if choice == 'system' or not sys.platform.startswith('linux'):
    return False
  libc = ctypes.CDLL(None)
  if not hasattr(libc, 'gnu_get_libc_version'):  # musl and others: their malloc has no mallopt
    return False
  arenas = _arena_count(libc)
  if arenas > 1:  # too late: threads that already allocated keep arenas that map large blocks afresh
    if restart and _RESTARTED not in os.environ:
      _restart_with_tunables()
    logging.warning('Host memory keeps glibc\'s defaults: other threads have already allocated (%d malloc '
                    'arenas), so their large blocks would still be mapped afresh. Call '
                    'host_memory.keep_freed_memory() before anything starts threads, or start the process '
                    'with GLIBC_TUNABLES=%s', arenas, GLIBC_TUNABLES)
    return False
  failed = [param for param, value in _SETTINGS if libc.mallopt(param, value) != 1]
  if failed:
    logging.warning('mallopt refused parameters %s; host memory keeps glibc\'s defaults for them.', failed)
    return False
  _applied = True
  return True
