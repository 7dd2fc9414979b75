"""Checkpointer: relative paths, keep-N, the data iterator, and clear errors."""

import grain
import jax.numpy as jnp
import numpy as np
import pytest

from vidgen.train import checkpoint as checkpoint_lib


def test_relative_directory_keep_n_and_iterator(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  dataset = grain.MapDataset.range(100).shuffle(seed=0).batch(2).to_iter_dataset()
  it = iter(dataset)
  ckpt = checkpoint_lib.Checkpointer('runs/x/checkpoints', keep=2)
  for step in (1, 2, 3):
    next(it)
    ckpt.save(step, {'w': jnp.full((2,), float(step))}, it)
  ckpt.close()
  expected = next(it)

  restored_it = iter(dataset)
  ckpt = checkpoint_lib.Checkpointer('runs/x/checkpoints')
  assert ckpt.all_steps() == [2, 3]
  state = ckpt.restore({'w': jnp.zeros((2,))}, restored_it)
  ckpt.close()
  np.testing.assert_array_equal(state['w'], [3.0, 3.0])
  np.testing.assert_array_equal(next(restored_it), expected)


def test_missing_checkpoints_are_clear_errors(tmp_path):
  with pytest.raises(checkpoint_lib.CheckpointError, match='does not exist'):
    checkpoint_lib.Checkpointer(str(tmp_path / 'none'), create=False)
  ckpt = checkpoint_lib.Checkpointer(str(tmp_path / 'empty'))
  with pytest.raises(checkpoint_lib.CheckpointError, match='No checkpoint in'):
    ckpt.restore({'w': jnp.zeros((2,))})
