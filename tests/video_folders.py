"""Folders of tiny captioned videos, as a user's own data would be, for tests that train or evaluate on them."""

import json

import numpy as np

from vidgen.data import video_io


def write_video_folder(path, n, frames=9, size=16, fps=8):
  """`n` mp4 files of a block at a different place in each, and captions.jsonl; returns the path as str."""
  path.mkdir()
  rows = []
  for i in range(n):
    video = np.zeros((frames, size, size, 3), np.uint8)
    video[:, 4:10, i:i + 6] = 200
    video_io.write_video(path / f'{i}.mp4', video, fps=fps)
    rows.append(json.dumps({'file': f'{i}.mp4', 'caption': f'a large red square number {i}'}))
  (path / 'captions.jsonl').write_text('\n'.join(rows) + '\n')
  return str(path)
