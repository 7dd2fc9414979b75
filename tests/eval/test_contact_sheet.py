"""Contact sheets lay out every video and reject bad input."""

import numpy as np
import pytest
from PIL import Image

from vidgen.eval import contact_sheet


def test_rows_and_frames_are_placed():
  videos = [np.full((5, 8, 8, 3), 40 * (i + 1), np.uint8) for i in range(3)]
  sheet = contact_sheet.contact_sheet(videos, ['a', 'b', 'c'], frames_per_row=4, frame_size=16,
                                      caption_width=50)
  assert sheet.dtype == np.uint8
  assert sheet.shape == (3 * (16 + 4) + 4, 50 + 4 * (16 + 4) + 4, 3)
  for row in range(3):  # each row shows its own video's colour
    y = 4 + row * 20 + 8
    assert sheet[y, 50 + 4 + 8, 0] == 40 * (row + 1)


def test_images_and_save(tmp_path):
  path = contact_sheet.save_contact_sheet(str(tmp_path / 's.png'), [np.zeros((1, 8, 12, 3), np.uint8)])
  assert Image.open(path).size[0] > 0


def test_bad_input():
  with pytest.raises(ValueError, match='uint8'):
    contact_sheet.contact_sheet([np.zeros((2, 8, 8, 3), np.float32)])
  with pytest.raises(ValueError, match='at least one'):
    contact_sheet.contact_sheet([])
