"""The quickstart runs end to end on the tiny config, resumes, and writes what the README promises."""

import os

from vidgen import config_lib, quickstart


def test_quickstart_tiny_runs_and_resumes(tmp_path, capsys):
  config = config_lib.load_config('experiments/configs/quickstart.py:tiny')
  results = quickstart.run_quickstart(config, str(tmp_path))
  rows = results['rows']
  assert results['protocol']['num_videos'] == config.num_eval_videos
  assert rows['real']['metrics']['color']['value'] == 1.0
  assert rows['generated']['metrics']['adherence']['n'] == config.num_eval_videos
  assert set(results['eval_loss']['losses']) >= {'loss', 'loss_t0.05'}
  out = capsys.readouterr().out
  assert '| generated' in out and '| real videos (upper bound)' in out and '**How measured.**' in out
  for name in ('config.json', 'vae/checkpoints', 'latents/train.json', 'dit/tokenizer.model', 'dit/checkpoints',
               'samples/00.mp4', 'samples/01.gif', 'samples/contact_sheet.png', 'samples/settings.json',
               'world_features/features.json', 'evaluation/report.md', 'evaluation/metrics.json', 'report.md'):
    assert os.path.exists(tmp_path / name), name

  again = quickstart.run_quickstart(config, str(tmp_path))  # everything trained: resumes, no retraining
  out = capsys.readouterr().out
  assert 'found 8 cached latents' in out and 'No world feature net' not in out
  assert again == results
