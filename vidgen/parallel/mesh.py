"""The device mesh: axes `data`, `fsdp`, `tensor`, `sequence`, sized in config.

`config.parallel.ici` sizes each axis within a slice (a TPU slice's chips talk over ICI) and
`config.parallel.dcn` across slices (multi-slice, over the data-centre network); an axis's
mesh size is ici × dcn. One ici entry may be -1: it takes the devices the others leave.

    data      replicas that each see a different part of the batch
    fsdp      also splits the batch, and shards parameters and optimizer state (ZeRO-3)
    tensor    splits heads and MLP width inside each layer (Megatron)
    sequence  splits the tokens of each video (long videos)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
from jax.experimental import mesh_utils

from vidgen.parallel import rules as rules_lib

AXES = ('data', 'fsdp', 'tensor', 'sequence')
BATCH_AXES = ('data', 'fsdp')  # the global batch is split over these


class MeshError(ValueError):
  """A mesh that cannot be laid over the devices at hand."""


def _axis_sizes(**sizes: int) -> dict[str, int]:
  return dict({axis: 1 for axis in AXES}, **sizes)


@dataclasses.dataclass(frozen=True)
class ParallelConfig:
  """The `parallel` block: data parallel over every device and replicated parameters by default."""
  ici: dict[str, int] = dataclasses.field(default_factory=lambda: _axis_sizes(data=-1))  # within a slice; -1 fills the rest
  dcn: dict[str, int] = dataclasses.field(default_factory=_axis_sizes)  # across slices (multi-slice)
  rules: str = 'data_parallel'  # data_parallel | fsdp | fsdp_tensor | fsdp_sequence (vidgen/parallel/rules.py)
  extra_rules: tuple = ()       # (logical name, mesh axes) pairs tried before the preset's

  def __post_init__(self):
    for name in ('ici', 'dcn'):
      unknown = sorted(set(getattr(self, name)) - set(AXES))
      if unknown:
        raise ValueError(f'parallel.{name} names axes {unknown}; the mesh axes are {list(AXES)}.')
    if self.rules not in rules_lib.PRESETS:
      raise ValueError(f'parallel.rules={self.rules!r} is not a preset; use one of {list(rules_lib.PRESETS)}.')


def resolve_sizes(sizes: dict[str, int], num_devices: int, what: str = 'parallel.ici',
                  unit: str = 'devices') -> tuple[int, ...]:
  """Axis sizes in AXES order with a -1 filled in; errors say which numbers disagree."""
  unknown = set(sizes) - set(AXES)
  if unknown:
    raise MeshError(f'{what} has unknown axes {sorted(unknown)}; the mesh axes are {list(AXES)}.')
  values = [int(sizes.get(axis, 1)) for axis in AXES]
  if any(v == 0 or v < -1 for v in values):
    raise MeshError(f'{what} sizes must be positive or -1 (fill), got {dict(zip(AXES, values))}.')
  if values.count(-1) > 1:
    raise MeshError(f'{what} has more than one axis set to -1: {dict(zip(AXES, values))}; set all but one.')
  known = math.prod(v for v in values if v != -1)
  if -1 in values:
    if num_devices % known:
      raise MeshError(f'{what}={dict(zip(AXES, values))}: the fixed axes multiply to {known}, which does not '
                      f'divide the {num_devices} {unit}, so -1 cannot fill the rest.')
    values[values.index(-1)] = num_devices // known
  elif known != num_devices:
    raise MeshError(f'{what}={dict(zip(AXES, values))} multiplies to {known}, but there are {num_devices} '
                    f'{unit}; make the sizes multiply to {num_devices} (or set one to -1).')
  return tuple(values)


def _num_slices(devices: Sequence[Any]) -> int:
  return len({getattr(d, 'slice_index', 0) for d in devices})


def make_mesh(parallel: ml_collections.ConfigDict, devices: Sequence[Any] | None = None) -> jax.sharding.Mesh:
  """The mesh of `config.parallel` over `devices` (default: all of them, every process's).

  Devices are laid out by `mesh_utils`, which on TPU keeps each axis on physically close chips.
  """
  devices = list(jax.devices() if devices is None else devices)
  dcn = resolve_sizes(dict(parallel.dcn), _num_slices(devices), 'parallel.dcn', unit='slices')
  slices = math.prod(dcn)
  ici = resolve_sizes(dict(parallel.ici), len(devices) // slices, 'parallel.ici')
  if slices > 1:
    array = mesh_utils.create_hybrid_device_mesh(ici, dcn, devices, allow_split_physical_axes=True)
  else:
    try:
      array = mesh_utils.create_device_mesh(ici, devices, allow_split_physical_axes=True)
    except (NotImplementedError, ValueError, AssertionError):  # layouts mesh_utils has no recipe for
      array = np.asarray(devices).reshape(ici)
  return jax.sharding.Mesh(array, AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(AXES))


def batch_parallelism(mesh: jax.sharding.Mesh) -> int:
  """How many ways the global batch is split (data × fsdp)."""
  return math.prod(mesh.shape[a] for a in BATCH_AXES)


def describe(mesh: jax.sharding.Mesh) -> str:
  """'data=2 fsdp=4 tensor=1 sequence=1 (8 devices)'."""
  return ' '.join(f'{a}={mesh.shape[a]}' for a in AXES) + f' ({math.prod(mesh.shape.values())} devices)'
