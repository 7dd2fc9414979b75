"""keep_freed_memory: a jitted call stops faulting in its temporary buffer afresh every time."""

import os
import subprocess
import sys

import pytest

from vidgen import host_memory

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# x @ w is a 64 MB temporary (16,384 pages), over glibc's 32 MB mmap ceiling.
_PROBE = """
import resource, sys, threading, time
if sys.argv[1] == 'late':  # a thread allocates (and lives on) before the call, as in a notebook kernel
  started = threading.Event()
  threading.Thread(target=lambda: ([bytearray(200_000) for _ in range(50)], started.set(), time.sleep(60)),
                   daemon=True).start()
  started.wait()
from vidgen import host_memory
applied = host_memory.keep_freed_memory()
import jax, jax.numpy as jnp
x, w, w2 = jnp.ones((4096, 256)), jnp.full((256, 4096), 0.01), jnp.full((4096, 16), 0.01)
f = jax.jit(lambda x, w, w2: jnp.sum(jnp.tanh(x @ w) @ w2))
for _ in range(2):
  f(x, w, w2).block_until_ready()
faults = []
for _ in range(3):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  f(x, w, w2).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(applied, max(faults))
"""


def _faults_per_call(choice: str, when: str = 'first') -> tuple[str, int]:
  env = dict(os.environ, JAX_PLATFORMS='cpu', VIDGEN_HOST_MALLOC=choice)
  env.pop('GLIBC_TUNABLES', None)
  done = subprocess.run([sys.executable, '-c', _PROBE, when], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=120)
  assert done.returncode == 0, done.stderr[-2000:]
  applied, faults = done.stdout.split()
  return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc settings')
def test_reused_memory_is_not_faulted_in_again_each_call():
  applied, faults = _faults_per_call('reuse')
  assert applied == 'True'
  assert faults < 1000, f'{faults} page faults per call with freed memory kept'
  applied, faults = _faults_per_call('system')
  assert applied == 'False'
  assert faults > 8000, f'only {faults} page faults per call with glibc defaults: the probe no longer probes'


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc settings')
def test_a_call_after_other_threads_allocated_sets_nothing():
  applied, faults = _faults_per_call('reuse', when='late')
  assert applied == 'False'
  assert faults > 8000


def test_unknown_setting_is_refused(monkeypatch):
  monkeypatch.setenv(host_memory.ENV_VAR, 'tcmalloc')
  with pytest.raises(ValueError, match='reuse.*system'):
    host_memory.keep_freed_memory()
