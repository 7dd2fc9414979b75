"""Sharded training on 8 simulated CPU devices equals the 1-device run, for every rule preset.

One subprocess (8 devices need XLA_FLAGS before jax starts) runs tests/parallel/
sharded_equivalence.py; the tests read its JSON. Set VIDGEN_WRITE_GOLDEN=1 to rewrite the
golden sharding tables after an intended change of the rules or the model's annotations.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'golden')
PRESETS = ('data_parallel', 'fsdp', 'fsdp_tensor', 'fsdp_sequence')


def eight_device_env() -> dict[str, str]:
  return dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=8',
              JAX_COMPILATION_CACHE_DIR=os.path.join(tempfile.gettempdir(), 'vidgen-test-jax-cache'),
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0.5')


@pytest.fixture(scope='module')
def results():
  out = subprocess.run([sys.executable, '-m', 'tests.parallel.sharded_equivalence'], cwd=REPO,
                       env=eight_device_env(), capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout)


@pytest.mark.parametrize('preset', PRESETS)
def test_dit_step_matches_one_device(results, preset):
  r = results['dit'][preset]
  assert r['devices'] == 8 and r['reference_devices'] == 1
  np.testing.assert_allclose(r['loss'], r['reference_loss'], rtol=1e-5)
  np.testing.assert_allclose(r['grad_norm'], r['reference_grad_norm'], rtol=1e-5)
  assert r['max_grad_diff'] <= 1e-5 * r['max_grad'], (r['max_grad_diff'], r['max_grad'])
  assert r['max_param_diff'] < 1e-6


def test_vae_step_matches_one_device(results):
  r = results['vae']['data_parallel']
  assert r['devices'] == 8
  np.testing.assert_allclose(r['loss'], r['reference_loss'], rtol=1e-5)
  assert r['max_param_diff'] < 1e-6


@pytest.mark.parametrize('preset', PRESETS)
def test_arrays_are_sharded_as_planned(results, preset):
  r = results['dit'][preset]
  assert r['actual'] == r['planned']


def test_presets_split_what_they_say(results):
  fc1 = 'params/denoiser/blocks/mlp/fc1/dense/kernel'  # [layers, embed, mlp]
  query = 'params/denoiser/blocks/attn/query/kernel'   # [layers, embed, heads, kv]
  dit = results['dit']
  assert all("'" not in spec for spec in dit['data_parallel']['planned'].values())  # all replicated
  assert dit['fsdp']['planned'][fc1] == "(None, 'fsdp', None)"
  assert dit['fsdp']['planned']['opt_state/1/0/mu/denoiser/blocks/mlp/fc1/dense/kernel'] == "(None, 'fsdp', None)"
  assert dit['fsdp_tensor']['planned'][fc1] == "(None, 'fsdp', 'tensor')"
  assert dit['fsdp_tensor']['planned'][query] == "(None, 'fsdp', 'tensor', None)"
  assert dit['fsdp_sequence']['planned'][fc1] == "(None, ('fsdp', 'sequence'), None)"


def test_golden_shardings(results):
  path = os.path.join(GOLDEN, 'dit_tiny_fsdp_tensor.json')
  table = results['dit']['fsdp_tensor']['planned']
  if os.environ.get('VIDGEN_WRITE_GOLDEN'):
    with open(path, 'w') as f:
      json.dump(table, f, indent=1, sort_keys=True)
  with open(path) as f:
    golden = json.load(f)
  changed = sorted(k for k in golden.keys() | table.keys() if golden.get(k) != table.get(k))
  assert not changed, f'shardings changed for {changed[:10]}; rerun with VIDGEN_WRITE_GOLDEN=1 if intended'


def test_checkpoint_restores_onto_another_mesh(results):
  r = results['reshard']
  assert r['max_diff'] == 0.0
  assert r['actual'] == r['planned']
  assert r['planned']['params/denoiser/blocks/mlp/fc1/dense/kernel'] == "(None, 'fsdp', 'tensor')"
