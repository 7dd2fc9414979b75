"""Nothing is lost to a bad checkpoint or a full disk: the run falls back, or says what is safe."""

import glob
import os
import subprocess

import jax.numpy as jnp
import numpy as np
import pytest

from vidgen.train import checkpoint as checkpoint_lib


def _save_steps(directory, steps, size=2):
  ckpt = checkpoint_lib.Checkpointer(directory, keep=10)
  for step in steps:
    ckpt.save(step, {'w': jnp.full((size,), float(step))})
  ckpt.close()


def _truncate_data(step_dir):
  for path in glob.glob(os.path.join(step_dir, 'state', '**', 'd', '*'), recursive=True):
    with open(path, 'r+b') as f:
      f.truncate(3)


def _delete_state(step_dir):
  for path in glob.glob(os.path.join(step_dir, 'state', '*')):
    if os.path.isfile(path):
      os.remove(path)


def _garbage_metadata(step_dir):
  for name in ('_METADATA', 'manifest.ocdbt'):
    with open(os.path.join(step_dir, 'state', name), 'wb') as f:
      f.write(b'\x00garbage{')


@pytest.mark.parametrize('corrupt', [_truncate_data, _delete_state, _garbage_metadata],
                         ids=['truncated', 'missing_files', 'garbage_metadata'])
def test_an_unreadable_latest_checkpoint_falls_back_to_the_one_before(tmp_path, corrupt, caplog):
  directory = str(tmp_path / 'checkpoints')
  _save_steps(directory, (1, 2, 3))
  corrupt(os.path.join(directory, '3'))

  ckpt = checkpoint_lib.Checkpointer(directory, keep=10)
  state = ckpt.restore({'w': jnp.zeros((2,))})
  np.testing.assert_array_equal(state['w'], [2.0, 2.0])
  assert any('step 3' in r.getMessage() and 'cannot be read' in r.getMessage() for r in caplog.records)
  assert os.path.isdir(os.path.join(directory, '3.unreadable'))  # kept for a look, out of the way
  assert ckpt.all_steps() == [1, 2]
  assert ckpt.save(3, {'w': jnp.full((2,), 30.0)})  # the resumed run saves step 3 again
  ckpt.close()
  np.testing.assert_array_equal(checkpoint_lib.Checkpointer(directory).restore({'w': jnp.zeros((2,))})['w'],
                                [30.0, 30.0])


def test_inference_skips_an_unreadable_checkpoint_without_moving_it(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  _save_steps(directory, (1, 2))
  _truncate_data(os.path.join(directory, '2'))
  ckpt = checkpoint_lib.Checkpointer(directory, create=False)
  np.testing.assert_array_equal(ckpt.restore_subset({'w': jnp.zeros((2,))})['w'], [1.0, 1.0])
  assert os.path.isdir(os.path.join(directory, '2'))


def test_every_checkpoint_unreadable_is_a_clear_error(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  _save_steps(directory, (1, 2))
  for step in (1, 2):
    _truncate_data(os.path.join(directory, str(step)))
  with pytest.raises(checkpoint_lib.CheckpointError, match=r'No checkpoint in .* can be read \(steps \[2, 1\]\)'):
    checkpoint_lib.Checkpointer(directory).restore({'w': jnp.zeros((2,))})


def test_a_different_config_is_not_mistaken_for_corruption(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  _save_steps(directory, (1, 2))
  with pytest.raises(checkpoint_lib.CheckpointError, match='different model config'):
    checkpoint_lib.Checkpointer(directory).restore({'w': jnp.zeros((5,))})


@pytest.fixture
def small_disk(tmp_path):
  """A 2 MiB tmpfs (needs root, as on CI); skipped with the reason where it cannot be mounted."""
  mount = tmp_path / 'disk'
  mount.mkdir()
  result = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mount)], capture_output=True, text=True)
  if result.returncode != 0:
    pytest.skip(f'cannot mount a small tmpfs here ({result.stderr.strip()[:100]})')
  yield str(mount)
  subprocess.run(['umount', '-l', str(mount)], check=False)


def test_a_full_disk_is_a_clear_error_and_the_previous_checkpoint_survives(small_disk):
  directory = os.path.join(small_disk, 'checkpoints')
  _save_steps(directory, (1,), size=1000)  # 4 kB
  ckpt = checkpoint_lib.Checkpointer(directory, keep=1)
  with pytest.raises(checkpoint_lib.CheckpointError, match=r'failed: the disk is full.*steps \[1\]\) are intact'):
    ckpt.save(2, {'w': jnp.asarray(np.random.default_rng(0).normal(size=1_000_000), jnp.float32)})  # 4 MB on 2 MiB
    ckpt.wait()
  ckpt.manager.close()
  restored = checkpoint_lib.Checkpointer(directory).restore({'w': jnp.zeros((1000,))}, step=1)
  np.testing.assert_array_equal(restored['w'], np.ones(1000))
  assert checkpoint_lib.Checkpointer(directory).all_steps() == [1]
