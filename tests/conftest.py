"""Test set-up: CPU only, the repo root importable, and compiled programs cached across tests."""

import os
import sys
import tempfile

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
from absl import flags  # noqa: E402

# Grain's worker processes read absl flags; under pytest nothing parses them.
flags.FLAGS.mark_as_parsed()

# Tests build the same tiny models many times (fresh trainer objects, subprocesses): reuse
# their compiled programs instead of recompiling each.
jax.config.update('jax_compilation_cache_dir', os.path.join(tempfile.gettempdir(), 'vidgen-test-jax-cache'))
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)


import pytest  # noqa: E402


@pytest.fixture(scope='session')
def tiny_vae_run(tmp_path_factory):
  """A workdir with the tiny VAE config trained to the end (4 steps), shared by tests."""
  from vidgen import config_lib
  from vidgen.train import trainers
  workdir = str(tmp_path_factory.mktemp('tiny_vae'))
  trainers.train_and_evaluate(config_lib.load_config('experiments/configs/vae_world.py:tiny'), workdir)
  return workdir


@pytest.fixture(scope='session')
def tiny_dit_run(tiny_vae_run, tmp_path_factory):
  """A workdir with the tiny DiT config trained to the end on the tiny VAE's latents."""
  from vidgen import config_lib
  from vidgen.train import trainers
  workdir = str(tmp_path_factory.mktemp('tiny_dit'))
  config = config_lib.load_config('experiments/configs/dit_world.py:tiny', {'vae_workdir': tiny_vae_run})
  trainers.train_and_evaluate(config, workdir)
  return workdir
