"""The quickstart: the built-in world end to end on a laptop CPU, nothing to download.

  python -m vidgen.quickstart [--workdir runs/quickstart] [--config experiments/configs/world.py]

Today it runs the data path: trains the caption tokenizer on world captions, draws one batch
from the Grain pipeline and writes it as mp4, gif and a contact sheet, then probes held-out
eval videos and prints how well the probe reads them against their ground truth (the
reference row every generated video will be scored against).
"""

from __future__ import annotations

import os
import time
from typing import Any

import ml_collections
import numpy as np
from absl import app, flags

from vidgen import config_lib
from vidgen.data import pipeline, probe, video_io, world
from vidgen.eval import report
from vidgen.eval.contact_sheet import save_contact_sheet

DEFAULT_CONFIG = 'experiments/configs/world.py'
TABLE_COLUMNS = ('color', 'shape', 'size', 'count', 'direction', 'speed', 'background')



def write_batch(batch: dict[str, Any], out_dir: str, fps: float) -> list[str]:
  """Writes each video of a pipeline batch as mp4 + gif, and one contact sheet; returns the paths."""
  os.makedirs(out_dir, exist_ok=True)
  videos = [video_io.to_uint8(v) for v in batch['video']]
  captions = [str(c) for c in batch['caption']]
  paths = []
  for i, video in enumerate(videos):
    for ext in ('mp4', 'gif'):
      path = os.path.join(out_dir, f'video_{i:02d}.{ext}')
      video_io.write_video(path, video, fps)
      paths.append(path)
  paths.append(save_contact_sheet(os.path.join(out_dir, 'contact_sheet.png'), videos, captions))
  return paths


def probe_real_videos(config: ml_collections.ConfigDict, split: str, count: int) -> dict[str, Any]:
  """Probe scores of `count` ground-truth world videos of `split` against their own truth."""
  source = world.make_source(config.data, split, config.seed)
  records = [source[i] for i in range(min(count, len(source)))]
  return probe.score_videos([r['frames'] for r in records], records=records)


def run_quickstart(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs every stage into `workdir` and returns the table's rows."""
  start = time.time()
  os.makedirs(workdir, exist_ok=True)
  config_lib.save_config(config, workdir)

  tokenizer = pipeline.make_tokenizer(config, workdir)
  print(f'[1/3] tokenizer: {tokenizer.vocab_size} pieces, saved to {os.path.join(workdir, "tokenizer.model")}')

  batch = pipeline.batches(pipeline.make_dataset(config, tokenizer=tokenizer), 1)[0]
  paths = write_batch(batch, os.path.join(workdir, 'world_batch'), config.data.fps)
  print(f'[2/3] pipeline batch: video {batch["video"].shape} in [-1, 1], text_ids {batch["text_ids"].shape}; '
        f'wrote {len(paths)} files (contact sheet: {paths[-1]})')

  rows = {f'real world videos ({config.data.eval_split})':
          probe_real_videos(config, config.data.eval_split, config.probe_videos)}
  print(f'[3/3] probe on {config.probe_videos} {config.data.eval_split} videos against their ground truth:\n')
  print(report.markdown_table(rows, TABLE_COLUMNS, row_header='videos'))
  print(f'\nDone in {time.time() - start:.0f}s. Outputs in {workdir}.')
  return rows


def main(argv):
  del argv
  config = config_lib.load_config(flags.FLAGS.config or DEFAULT_CONFIG, config_lib.overrides())
  run_quickstart(config, flags.FLAGS.workdir or 'runs/quickstart')


if __name__ == '__main__':
  config_lib.define_flags()
  app.run(main, flags_parser=config_lib.parse_flags_with_overrides)
