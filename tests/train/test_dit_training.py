"""The real DiT training loop on the tiny config."""

import os
import types

import jax
import numpy as np
import pytest
from PIL import Image

from tests.video_folders import write_video_folder
from vidgen import config_lib, runs
from vidgen.diffusion import masking, objectives
from vidgen.train import dit_trainer
from vidgen.train import metrics as metrics_lib
from vidgen.train import trainers
from vidgen.train.loop import model_inputs
from vidgen.train.state import TrainState


def test_run_writes_checkpoints_metrics_and_tokenizer(tiny_dit_run):
  rows = metrics_lib.read_metrics(tiny_dit_run)
  losses = [r['train/loss'] for r in rows if 'train/loss' in r]
  assert len(losses) == 4 and all(np.isfinite(losses))
  evals = [r for r in rows if 'eval/loss' in r]
  assert len(evals) == 1 and evals[0]['step'] == 4
  buckets = [k for k in evals[0] if k.startswith('eval/loss_t')]
  assert buckets[0] == 'eval/loss_t0.05' and buckets[-1] == 'eval/loss_t0.95' and len(buckets) == 10
  assert 0.0 <= evals[0]['eval/probe/adherence'] <= 1.0 and 'eval/probe/color' in evals[0]
  assert sorted(os.listdir(os.path.join(tiny_dit_run, 'checkpoints'))) == ['2', '4']
  assert os.path.exists(os.path.join(tiny_dit_run, 'tokenizer.model'))


def test_load_dit_restores_ema_params_and_latent_stats(tiny_dit_run):
  model, params, extra, config, tokenizer = runs.load_dit(tiny_dit_run)
  assert config.model == 'dit'
  assert model.text.vocab_size == tokenizer.vocab_size
  scale = np.asarray(extra['latent_scale'])
  assert scale.shape == (model.dit.latent_channels,) and np.all(scale > 0) and not np.allclose(scale, 1.0)


def test_missing_vae_is_a_clear_error(tmp_path):
  config = config_lib.load_config('experiments/configs/dit_world.py:tiny')
  with pytest.raises(config_lib.ConfigError, match='vae_workdir is empty'):
    trainers.make_trainer(config, str(tmp_path))


def test_probe_evaluation_needs_world_eval_data(tiny_vae_run):
  config = config_lib.load_config('experiments/configs/dit_world.py:tiny', {
      'vae_workdir': tiny_vae_run, 'data.source': 'folder', 'eval.num_videos': 2, 'eval.evaluators': "('loss', 'probe')"})
  with pytest.raises(config_lib.ConfigError, match="eval.data_source=world.*evaluators=.*'samples'"):
    trainers.make_trainer(config)
  with pytest.raises(config_lib.ConfigError, match="eval.evaluators names \\['fvd'\\]"):
    config_lib.load_config('experiments/configs/dit_world.py:tiny', {'eval.evaluators': "('loss', 'fvd')"})


def test_a_run_on_its_own_videos_is_evaluated_by_loss_and_a_contact_sheet(tiny_dit_run, tmp_path):
  """Training on a folder of real videos needs no config change to evaluate: no probe, which
  needs the world's truth, but the eval loss on held-out videos and a sheet of sampled prompts."""
  _, params, extra, config, _ = runs.load_dit(tiny_dit_run)
  config.data.source = 'folder'
  config.data.folder.path = write_video_folder(tmp_path / 'train', 3)
  config.data.folder.eval_path = write_video_folder(tmp_path / 'eval', 2)
  config.eval.evaluators = ()
  config.eval.num_videos = 2
  trainer = dit_trainer.DiTTrainer(config, tiny_dit_run)
  assert trainer.evaluators == ('loss', 'samples')
  assert trainer.eval_data() == f'held-out folder data at {tmp_path / "eval"}'
  assert trainer.sample_prompts() == ['a large red square number 0', 'a large red square number 1']
  state = TrainState(step=np.int32(4), params=params, opt_state=None, ema_params=params, extra=extra)
  metrics = trainer.evaluate(state, 4, str(tmp_path / 'run'))
  assert np.isfinite(metrics['loss']) and 'loss_t0.05' in metrics and metrics['samples/videos'] == 2
  sheet = np.asarray(Image.open(tmp_path / 'run' / 'eval' / 'step_4.png'))
  assert sheet.ndim == 3 and sheet.std() > 0


def test_bucket_times_span_the_noise_levels():
  flow = objectives.make_objective({'kind': 'flow'})
  ddpm = objectives.make_objective({'kind': 'ddpm', 'num_timesteps': 1000})
  assert dit_trainer.bucket_times(flow, 4) == [('loss_t0.125', 0.125), ('loss_t0.375', 0.375),
                                               ('loss_t0.625', 0.625), ('loss_t0.875', 0.875)]
  assert [n for n, _ in dit_trainer.bucket_times(flow, 10)][:3] == ['loss_t0.05', 'loss_t0.15', 'loss_t0.25']
  assert [t for _, t in dit_trainer.bucket_times(ddpm, 2)] == [250.0, 749.0]
  assert dit_trainer.bucket_times(flow, 0) == []


def test_a_vae_run_is_not_a_dit_run(tiny_vae_run):
  with pytest.raises(runs.CheckpointError, match='not a DiT run'):
    runs.load_dit(tiny_vae_run)


def test_frame_masking_gives_frames_clean_and_the_model_sees_them(tiny_dit_run):
  _, params, extra, config, _ = runs.load_dit(tiny_dit_run)
  trainer = dit_trainer.DiTTrainer(config, tiny_dit_run)
  batch = model_inputs(next(iter(trainer.dataset())))
  state = types.SimpleNamespace(extra=extra)
  rng = jax.random.key(0)
  image, backward = masking.MaskingConfig(image=1.0), masking.MaskingConfig(backward=1.0, min_frames=1, max_frames=1)
  _, none = trainer._x0_and_masks(state, batch, rng)
  _, first = trainer._x0_and_masks(state, batch, rng, image)
  _, last = trainer._x0_and_masks(state, batch, rng, backward)
  assert not np.asarray(none).any()
  assert np.asarray(first[:, 0]).all() and not np.asarray(first[:, 1:]).any()
  assert np.asarray(last[:, -1]).all() and not np.asarray(last[:, :-1]).any()
  # The clean frames reach the model: the loss on the frames it must make changes.
  t = np.full((first.shape[0],), 0.9, np.float32)
  losses = [float(trainer.loss_fn(params, state, batch, rng, drop_prob=0.0, frame_masking=m, t=t))
            for m in (None, image, backward)]
  assert all(np.isfinite(losses)) and len(set(losses)) == 3


def test_masking_probabilities_are_checked_when_the_config_loads(tiny_vae_run):
  with pytest.raises(config_lib.ConfigError, match=r'masking.image=1.5 is a probability'):
    config_lib.load_config('experiments/configs/dit_world.py:tiny', {'vae_workdir': tiny_vae_run, 'masking.image': 1.5})
  with pytest.raises(config_lib.ConfigError, match='sum to 1.2 > 1'):
    config_lib.load_config('experiments/configs/dit_world.py:tiny', {
        'vae_workdir': tiny_vae_run, 'masking.image': 0.7, 'masking.forward': 0.5})
  config = config_lib.load_config('experiments/configs/dit_world.py:tiny', {'vae_workdir': tiny_vae_run}).to_dict()
  config['masking']['image'] = 1.5  # a config built in code, not loaded: checked when the trainer is made
  with pytest.raises(config_lib.ConfigError, match=r'masking.image=1.5 is a probability'):
    trainers.make_trainer(config)


def test_old_runs_with_first_frame_prob_load_with_masking_image(tmp_path):
  (tmp_path / 'config.json').write_text('{"model": "dit", "first_frame_prob": 0.9, "seed": 0}')
  config = config_lib.read_saved_config(str(tmp_path))
  assert 'first_frame_prob' not in config and config.masking.image == 0.9 and config.masking.forward == 0.0
  (tmp_path / 'config.json').write_text('{"model": "dit", "seed": 0}')
  assert config_lib.read_saved_config(str(tmp_path)).masking.image == 0.0


def test_a_moved_run_finds_its_vae_beside_it(tmp_path):
  moved = tmp_path / 'moved'
  for name in ('vae', 'dit'):
    (moved / name).mkdir(parents=True)
    (moved / name / 'config.json').write_text('{}')
  dit_dir = str(moved / 'dit')
  # Recorded where training ran (absolute, now gone) or relative to it: both resolve beside the DiT run.
  assert runs.resolve_vae_workdir(str(tmp_path / 'gone' / 'vae'), dit_dir) == str(moved / 'vae')
  assert runs.resolve_vae_workdir('runs/gone/vae', dit_dir) == str(moved / 'vae')
  # A VAE that exists where recorded wins; one found nowhere stays as recorded (load_vae names it).
  (tmp_path / 'other').mkdir()
  (tmp_path / 'other' / 'config.json').write_text('{}')
  assert runs.resolve_vae_workdir(str(tmp_path / 'other'), dit_dir) == str(tmp_path / 'other')
  assert runs.resolve_vae_workdir(str(tmp_path / 'gone' / 'vae2'), dit_dir) == str(tmp_path / 'gone' / 'vae2')
