"""Contact sheets: one PNG that shows many videos at once, a row per video with its caption."""

from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vidgen import paths


def contact_sheet(videos: Sequence[np.ndarray], captions: Sequence[str] | None = None, *,
                  frames_per_row: int = 8, frame_size: int = 64, caption_width: int = 220) -> np.ndarray:
  """Lays out videos as rows of evenly spaced frames, each row led by its wrapped caption.

  Args:
    videos: uint8 arrays [T, H, W, 3] (T may differ between videos; a 1-frame video is an image).
    captions: one per video, or None.
    frames_per_row: frames shown per video (fewer if the video is shorter).
    frame_size: the longer side of each shown frame in pixels (nearest-neighbour upscaling keeps
      small world videos crisp).
    caption_width: pixels reserved on the left for the caption.

  Returns:
    uint8 [H, W, 3] image.
  """
  if not len(videos):
    raise ValueError('contact_sheet needs at least one video.')
  for v in videos:
    if v.dtype != np.uint8 or v.ndim != 4 or v.shape[-1] != 3:
      raise ValueError(f'Videos must be uint8 [T, H, W, 3], got {v.dtype}{list(v.shape)}.')
  captions = list(captions) if captions is not None else [''] * len(videos)
  h, w = videos[0].shape[1:3]
  scale = frame_size / max(h, w)
  cell_h, cell_w = max(1, round(h * scale)), max(1, round(w * scale))
  pad = 4
  left = caption_width if any(captions) else 0
  sheet = Image.new('RGB', (left + frames_per_row * (cell_w + pad) + pad, len(videos) * (cell_h + pad) + pad),
                    (255, 255, 255))
  draw = ImageDraw.Draw(sheet)
  font = ImageFont.load_default()
  for row, (video, caption) in enumerate(zip(videos, captions)):
    y = pad + row * (cell_h + pad)
    picks = np.unique(np.linspace(0, len(video) - 1, min(frames_per_row, len(video))).round().astype(int))
    for col, t in enumerate(picks):
      frame = Image.fromarray(video[t]).resize((cell_w, cell_h), Image.NEAREST)
      sheet.paste(frame, (left + pad + col * (cell_w + pad), y))
    if caption:
      lines = textwrap.wrap(caption, width=max(10, caption_width // 7))[: max(1, cell_h // 12)]
      draw.multiline_text((pad, y), '\n'.join(lines), fill=(0, 0, 0), font=font, spacing=2)
  return np.asarray(sheet)


def save_contact_sheet(path: str, videos: Sequence[np.ndarray], captions: Sequence[str] | None = None,
                       **kwargs) -> str:
  """Writes `contact_sheet(...)` as a PNG and returns its path."""
  with paths.local_for_writing(path) as local:  # local or gs://
    Image.fromarray(contact_sheet(videos, captions, **kwargs)).save(local, format='PNG')
  return path
