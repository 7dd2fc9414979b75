"""The real VAE training loop on the tiny config: outputs, exact resume, and loading errors."""

import json
import os
import shutil

import numpy as np
import pytest

from vidgen import config_lib, runs
from vidgen.train import checkpoint as checkpoint_lib
from vidgen.train import metrics as metrics_lib
from vidgen.train import trainers
from vidgen.train import vae_trainer

CONFIG = 'experiments/configs/vae_world.py:tiny'


def _losses(workdir):
  return {row['step']: row['train/loss'] for row in metrics_lib.read_metrics(workdir) if 'train/loss' in row}


@pytest.fixture
def uninterrupted(tiny_vae_run):
  return tiny_vae_run


def test_run_writes_checkpoints_metrics_and_reconstructions(uninterrupted):
  config = config_lib.load_config(CONFIG)
  assert sorted(os.listdir(os.path.join(uninterrupted, 'checkpoints'))) == ['2', '4']
  losses = _losses(uninterrupted)
  assert sorted(losses) == [1, 2, 3, 4] and all(np.isfinite(list(losses.values())))
  rows = metrics_lib.read_metrics(uninterrupted)
  eval_row = [r for r in rows if 'eval/video_psnr' in r][-1]
  assert eval_row['step'] == config.train.num_steps
  assert {'eval/video_psnr', 'eval/video_ssim', 'eval/image_psnr', 'eval/image_ssim'} <= set(eval_row)
  assert 'train/disc_loss' in rows[0]  # the tiny config exercises the GAN path
  saved = json.load(open(os.path.join(uninterrupted, 'config.json')))
  assert saved['vae']['channels'] == list(config.vae.channels)
  outputs = os.listdir(os.path.join(uninterrupted, 'eval'))
  assert 'reconstruction_0000004.png' in outputs and 'reconstruction_0000004.mp4' in outputs
  assert os.listdir(os.path.join(uninterrupted, 'tensorboard'))


def test_interrupted_run_resumes_with_the_same_losses(uninterrupted, tmp_path):
  config = config_lib.load_config(CONFIG)
  workdir = str(tmp_path / 'resumed')
  trainers.train_and_evaluate(config, workdir, stop_after=2)  # as if preempted after step 2
  assert sorted(_losses(workdir)) == [1, 2]
  trainers.train_and_evaluate(config_lib.load_config(CONFIG), workdir)
  expected, got = _losses(uninterrupted), _losses(workdir)
  for step in (3, 4):
    np.testing.assert_allclose(got[step], expected[step], rtol=1e-5)


def test_load_vae_restores_the_ema_params(uninterrupted):
  model, params, config = runs.load_vae(uninterrupted)
  assert config.vae.latent_channels == model.config.latent_channels
  assert 'encoder' in params and 'decoder' in params


def test_load_vae_errors_name_the_problem(uninterrupted, tmp_path):
  with pytest.raises(config_lib.ConfigError, match='not a vidgen workdir'):
    runs.load_vae(str(tmp_path / 'nothing'))
  other = config_lib.load_config(CONFIG, {'vae.latent_channels': 8})
  with pytest.raises(checkpoint_lib.CheckpointError, match='latent_channels: run has 4, expected 8'):
    runs.load_vae(uninterrupted, expected=other.vae)

  no_ckpt = tmp_path / 'no_ckpt'
  no_ckpt.mkdir()
  shutil.copy(os.path.join(uninterrupted, 'config.json'), no_ckpt / 'config.json')
  with pytest.raises(checkpoint_lib.CheckpointError, match='No checkpoints at .*no_ckpt'):
    runs.load_vae(str(no_ckpt))

  mismatched = tmp_path / 'mismatched'
  shutil.copytree(uninterrupted, mismatched)
  saved = json.load(open(mismatched / 'config.json'))
  saved['vae']['latent_channels'] = 8
  (mismatched / 'config.json').write_text(json.dumps(saved))
  with pytest.raises(checkpoint_lib.CheckpointError, match=r'different model config.*shape'):
    runs.load_vae(str(mismatched))

  corrupt = tmp_path / 'corrupt'
  shutil.copytree(uninterrupted, corrupt)
  for root, _, files in os.walk(corrupt / 'checkpoints'):
    for name in files:
      if name.startswith(('manifest', 'ocdbt')) or root.endswith('d'):
        (open(os.path.join(root, name), 'wb')).write(b'garbage')
  with pytest.raises(checkpoint_lib.CheckpointError, match='corrupt'):
    runs.load_vae(str(corrupt))


def test_foreground_weights_mark_what_is_not_background():
  video = np.full((1, 2, 8, 8, 3), -0.5, np.float32)  # a uniform background
  video[:, :, 2:4, 3:5] = [0.9, -0.9, 0.1]             # a 2x2 object in both frames
  w = np.asarray(vae_trainer.foreground_weights(video, 4.0))
  assert w.shape == (1, 2, 8, 8, 1)
  assert np.all(w[:, :, 2:4, 3:5] == 5.0) and w.sum() == 2 * (60 * 1.0 + 4 * 5.0)
