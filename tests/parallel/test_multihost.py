"""Two processes on localhost (4 CPU devices each) train the tiny DiT on one FSDP mesh spanning
both; a single process then restores their checkpoint onto its own 1-device layout."""

import json
import os
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from vidgen import runs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def two_process_run(tiny_vae_run, tmp_path_factory):
  workdir, out = tmp_path_factory.mktemp('multihost_dit'), tmp_path_factory.mktemp('multihost_out')
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_COMPILATION_CACHE_DIR=os.path.join(tempfile.gettempdir(), 'vidgen-test-jax-cache'))
  port = free_port()
  workers = [subprocess.Popen([sys.executable, '-m', 'tests.parallel.multihost_worker', str(port), '2', str(i),
                               str(workdir), tiny_vae_run, str(out)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
  logs = []
  try:
    for w in workers:
      logs.append(w.communicate(timeout=900)[0])
  finally:
    for w in workers:
      w.kill()
  for i, w in enumerate(workers):
    assert w.returncode == 0, f'process {i} failed:\n{logs[i][-4000:]}'
  reports = [json.load(open(os.path.join(out, f'process{i}.json'))) for i in range(2)]
  return str(workdir), str(out), reports


def test_both_processes_train_on_one_mesh(two_process_run):
  _, _, reports = two_process_run
  for i, r in enumerate(reports):
    assert (r['process_index'], r['process_count'], r['local_devices'], r['devices']) == (i, 2, 4, 8)
    assert r['step'] == 2
    assert r['fc1_kernel_spec'] == "(None, 'fsdp', None)"
    width = 32  # dit_world.py:tiny; fc1 kernel is [layers, width, 4·width], width split 8 ways
    assert all(shape[1] == width // 8 for shape in r['fc1_kernel_shards'])


def test_processes_read_disjoint_data(two_process_run):
  _, _, reports = two_process_run
  a, b = (set(r['first_batch_indices']) for r in reports)
  assert len(a) == len(b) == 4 and not a & b


def test_one_process_restores_the_two_process_checkpoint(two_process_run):
  workdir, out, _ = two_process_run
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2']
  _, ema_params, _, _, _ = runs.load_dit(workdir)  # one process, one device
  saved = np.load(os.path.join(out, 'ema_params.npz'))
  import jax
  restored = {jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(ema_params)}
  assert sorted(restored) == sorted(saved.files)
  for k in saved.files:
    np.testing.assert_array_equal(restored[k], saved[k], err_msg=k)
