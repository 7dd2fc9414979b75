"""The quickstart runs end to end on the tiny config, resumes, and writes what the README promises."""

import os

from vidgen import config_lib, quickstart


def test_quickstart_tiny_runs_and_resumes(tmp_path, capsys):
  config = config_lib.load_config('experiments/configs/quickstart.py:tiny')
  rows = quickstart.run_quickstart(config, str(tmp_path))
  generated, real = rows.values()
  assert generated['num_videos'] == real['num_videos'] == config.num_eval_videos
  assert real['color'] == 1.0 and real['direction'] in (1.0, None)
  out = capsys.readouterr().out
  assert '| generated (2 eval prompts)' in out and '| real eval videos' in out
  for name in ('config.json', 'vae/checkpoints', 'latents/train.json', 'dit/tokenizer.model', 'dit/checkpoints',
               'samples/00.mp4', 'samples/01.gif', 'samples/contact_sheet.png', 'samples/settings.json',
               'report.md'):
    assert os.path.exists(tmp_path / name), name

  again = quickstart.run_quickstart(config, str(tmp_path))  # everything trained: resumes, no retraining
  assert 'found 8 cached latents' in capsys.readouterr().out
  assert again == rows
