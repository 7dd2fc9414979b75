"""The real DiT training loop on the tiny config."""

import os

import numpy as np
import pytest

from vidgen import config_lib
from vidgen.train import dit_trainer
from vidgen.train import metrics as metrics_lib
from vidgen.train import trainers


def test_run_writes_checkpoints_metrics_and_tokenizer(tiny_dit_run):
  rows = metrics_lib.read_metrics(tiny_dit_run)
  losses = [r['train/loss'] for r in rows if 'train/loss' in r]
  assert len(losses) == 4 and all(np.isfinite(losses))
  assert any('eval/loss' in r for r in rows)
  assert sorted(os.listdir(os.path.join(tiny_dit_run, 'checkpoints'))) == ['2', '4']
  assert os.path.exists(os.path.join(tiny_dit_run, 'tokenizer.model'))


def test_load_dit_restores_ema_params_and_latent_stats(tiny_dit_run):
  model, params, extra, config, tokenizer = dit_trainer.load_dit(tiny_dit_run)
  assert config.model == 'dit'
  assert model.text.vocab_size == tokenizer.vocab_size
  scale = np.asarray(extra['latent_scale'])
  assert scale.shape == (model.dit.latent_channels,) and np.all(scale > 0) and not np.allclose(scale, 1.0)


def test_missing_vae_is_a_clear_error(tmp_path):
  config = config_lib.load_config('experiments/configs/dit_world.py:tiny')
  with pytest.raises(config_lib.ConfigError, match='vae_workdir is empty'):
    trainers.make_trainer(config, str(tmp_path))


def test_a_vae_run_is_not_a_dit_run(tiny_vae_run):
  with pytest.raises(dit_trainer.checkpoint_lib.CheckpointError, match='not a DiT run'):
    dit_trainer.load_dit(tiny_vae_run)
