"""Cloud TPU slices by name ('v5p-128', 'v5e-16', ...): their chips and compile-only devices.

The number in a name counts TensorCores for v4 and v5p (two per chip) and chips for v5e and
v6e, as Cloud TPU names them. Chip figures (HBM size and bandwidth, peak dense bf16 FLOP/s)
are Google's published per-chip numbers. `devices()` needs `libtpu` (pip install "jax[tpu]"), not a TPU.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Any

GiB = 1024 ** 3


@dataclasses.dataclass(frozen=True)
class Chip:
  name: str
  hbm_bytes: int
  peak_bf16_flops: float
  hbm_bandwidth: float    # bytes/s
  cores_per_chip: int     # TensorCores counted by the slice name per chip
  dims: int               # 3D torus (v4, v5p) or 2D (v5e, v6e)


CHIPS = {
    'v4': Chip('TPU v4', 32 * GiB, 275e12, 1228e9, 2, 3),
    'v5p': Chip('TPU v5p', 95 * GiB, 459e12, 2765e9, 2, 3),
    'v5e': Chip('TPU v5e', 16 * GiB, 197e12, 819e9, 1, 2),
    'v6e': Chip('TPU v6e', 32 * GiB, 918e12, 1640e9, 1, 2),
}

# Chip-grid shapes of the standard slices, by number of chips.
_SHAPES_3D = {4: '2x2x1', 8: '2x2x2', 16: '2x2x4', 32: '2x4x4', 64: '4x4x4', 128: '4x4x8', 256: '4x8x8',
              512: '8x8x8', 1024: '8x8x16', 2048: '8x16x16', 4096: '16x16x16'}
_SHAPES_2D = {1: '1x1', 4: '2x2', 8: '2x4', 16: '4x4', 32: '4x8', 64: '8x8', 128: '8x16', 256: '16x16'}


@dataclasses.dataclass(frozen=True)
class Topology:
  name: str         # as asked, e.g. 'v5p-128'
  kind: str         # 'v5p'
  shape: str        # chip grid, e.g. '4x4x4'
  num_chips: int

  @property
  def chip(self) -> Chip:
    return CHIPS[self.kind]

  def devices(self) -> list[Any]:
    """Compile-only devices of this slice (one per chip), from libtpu."""
    # Compiling for a TPU does not use one: let several processes (tests, the compile tool) load
    # libtpu at once instead of queueing on its lockfile.
    os.environ.setdefault('ALLOW_MULTIPLE_LIBTPU_LOAD', '1')
    try:
      from jax.experimental import topologies
      desc = topologies.get_topology_desc(f'{self.kind}:{self.shape}', 'tpu')
    except Exception as e:  # no libtpu, or a libtpu that does not know the chip
      raise RuntimeError(f'Cannot describe {self.name} ({self.kind}:{self.shape}) without a working libtpu: '
                         f'{type(e).__name__}: {str(e)[:300]}. libtpu comes with pip install -r requirements-tpu.txt.') from e
    return list(desc.devices)


def parse(name: str) -> Topology:
  """'v5p-128' (cores for v4/v5p, chips for v5e/v6e) or 'v5p:4x4x4' (chip grid) → Topology."""
  kinds = ', '.join(CHIPS)
  m = re.fullmatch(r'(v4|v5p|v5e|v6e)[-:](\d+|\d+x\d+(?:x\d+)?)', name.strip().lower())
  if not m:
    raise ValueError(f'Unknown TPU topology {name!r}: use KIND-N (e.g. v5p-128, v5e-16, v6e-64, v4-32) or '
                     f'KIND:GRID (e.g. v5p:4x4x4) with KIND one of {kinds}.')
  kind, size = m.groups()
  chip = CHIPS[kind]
  shapes = _SHAPES_3D if chip.dims == 3 else _SHAPES_2D
  if 'x' in size:
    grid = [int(v) for v in size.split('x')]
    if len(grid) != chip.dims:
      raise ValueError(f'{name!r}: a {chip.name} grid has {chip.dims} dimensions, got {size}.')
    return Topology(name, kind, size, math.prod(grid))
  count = int(size)
  if count % chip.cores_per_chip:
    raise ValueError(f'{name!r}: {kind} slices are named by TensorCores, {chip.cores_per_chip} per chip; '
                     f'{count} is not a multiple of {chip.cores_per_chip}.')
  chips = count // chip.cores_per_chip
  if chips not in shapes:
    sizes = sorted(c * chip.cores_per_chip for c in shapes)
    raise ValueError(f'{name!r} is not a standard {kind} slice; known sizes: {sizes} (or give the grid, '
                     f'e.g. {kind}:{next(iter(shapes.values()))}).')
  return Topology(name, kind, shapes[chips], chips)
