"""Input pipeline throughput: videos/s out of the Grain pipeline, for the world and an mp4 folder.

  python experiments/benchmarks/input_pipeline.py [--videos 512] [--workers 0,1,2]

For each source and worker count it builds the training pipeline of
experiments/configs/world.py (32×32 × 17 frames, batch 8, tokenized captions) and times
batches after a warm-up batch. The mp4 folder holds world videos written with
vidgen.data.video_io (decoded by ffmpeg on every read).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

from absl import flags  # noqa: E402

from vidgen import config_lib  # noqa: E402
from vidgen.data import pipeline, video_io  # noqa: E402
from vidgen.world import scenes as world  # noqa: E402


def write_mp4_folder(config, folder: str, count: int) -> None:
  source = world.make_source(config.data, 'train', config.seed)
  with open(os.path.join(folder, 'captions.jsonl'), 'w') as f:
    for i in range(count):
      record = source[i]
      name = f'{i:05d}.mp4'
      video_io.write_video(os.path.join(folder, name), record['frames'], float(record['fps']))
      f.write(json.dumps({'file': name, 'caption': record['caption']}) + '\n')


def videos_per_second(config, tokenizer, num_videos: int) -> float:
  it = iter(pipeline.make_dataset(config, tokenizer=tokenizer))
  next(it)  # warm-up: workers start, first batch
  batches = max(1, num_videos // config.data.batch_size)
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * config.data.batch_size / (time.perf_counter() - start)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--videos', type=int, default=512, help='videos timed per measurement')
  parser.add_argument('--workers', default='0,1,2', help='comma-separated Grain worker counts')
  args = parser.parse_args()
  flags.FLAGS.mark_as_parsed()
  workers = [int(w) for w in args.workers.split(',')]

  base = config_lib.load_config('experiments/configs/world.py')
  with tempfile.TemporaryDirectory() as tmp:
    tokenizer = pipeline.make_tokenizer(base, tmp)
    folder = os.path.join(tmp, 'mp4')
    os.makedirs(folder)
    write_mp4_folder(base, folder, 256)
    print(f'{os.cpu_count()} CPUs; batch {base.data.batch_size} of {base.data.num_frames}×{base.data.height}×'
          f'{base.data.width} clips with tokenized captions; {args.videos} videos per measurement.\n')
    print('| source | workers | videos/s |\n|---|---|---|')
    for name, overrides in (('world', {}),
                            ('mp4 folder (256 files)', {'data.source': 'folder', 'data.folder.path': folder})):
      for n in workers:
        config = config_lib.load_config('experiments/configs/world.py', {**overrides, 'data.num_workers': n})
        print(f'| {name} | {n} | {videos_per_second(config, tokenizer, args.videos):.0f} |', flush=True)


if __name__ == '__main__':
  main()
