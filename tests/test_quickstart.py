"""The quickstart runs end to end on the tiny config and writes what the README promises."""

import os

from vidgen import config_lib, quickstart


def test_quickstart_tiny(tmp_path, capsys):
  config = config_lib.load_config('experiments/configs/world.py:tiny')
  rows = quickstart.run_quickstart(config, str(tmp_path))
  (reference,) = rows.values()
  assert reference['num_videos'] == config.probe_videos
  assert reference['color'] == 1.0 and reference['count'] == 1.0
  out = capsys.readouterr().out
  assert '| real world videos (eval)' in out and 'color' in out
  for name in ('config.json', 'tokenizer.model', 'world_batch/contact_sheet.png', 'world_batch/video_00.mp4',
               'world_batch/video_01.gif'):
    assert os.path.exists(tmp_path / name), name
