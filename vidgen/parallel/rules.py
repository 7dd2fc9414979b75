"""Logical-axis rules: how the names in model code map onto the mesh, as named presets.

Model code names axes logically — parameters `embed`, `mlp`, `heads`, `kv`, `vocab`, `layers`,
activations `activation_*` (vidgen/models/layers.py) — and never a mesh axis. A preset turns
those names into mesh axes; `config.parallel.extra_rules` are tried first, so a config can
change one mapping without restating a preset. A name no rule maps is not sharded.

| preset          | parameters and optimizer state       | activations                            |
| --------------- | ------------------------------------ | -------------------------------------- |
| data_parallel   | replicated                           | batch over data × fsdp                 |
| fsdp            | `embed` dim over fsdp                | batch over data × fsdp                 |
| fsdp_tensor     | + heads / mlp / vocab over tensor    | + heads and MLP width over tensor      |
| fsdp_sequence   | `embed` dim over fsdp × sequence     | + video tokens over sequence; attention |
|                 |                                      |   gathers the keys/values of all tokens |
"""

from __future__ import annotations

from typing import Sequence

LogicalRules = tuple[tuple[str, str | tuple[str, ...] | None], ...]

_BATCH = (('activation_batch', ('data', 'fsdp')),)
_FSDP = (('embed', 'fsdp'),)  # every large kernel has one `embed` dim (in or out)
# With the tokens split over `sequence`, its devices hold the same parameters: shard those too
# (gathered per layer, as FSDP does), so state memory falls with fsdp × sequence.
_FSDP_OVER_SEQUENCE = (('embed', ('fsdp', 'sequence')),)
_TENSOR = (
    ('heads', 'tensor'), ('mlp', 'tensor'), ('vocab', 'tensor'),
    ('activation_heads', 'tensor'), ('activation_mlp', 'tensor'),
)
_SEQUENCE = (
    ('activation_length', 'sequence'),   # queries, residual stream, MLP: each device its own tokens
    ('activation_kv_length', None),      # keys/values: all-gathered, every query sees every token
)

PRESETS: dict[str, LogicalRules] = {
    'data_parallel': _BATCH,
    'fsdp': _BATCH + _FSDP,
    'fsdp_tensor': _BATCH + _FSDP + _TENSOR,
    'fsdp_sequence': _BATCH + _FSDP_OVER_SEQUENCE + _SEQUENCE,
}


def logical_rules(preset: str, extra_rules: Sequence[Sequence] = ()) -> LogicalRules:
  """The rules of `preset`, with `extra_rules` ((name, mesh axes) pairs) taking precedence."""
  if preset not in PRESETS:
    raise ValueError(f'parallel.rules={preset!r} is not a preset; use one of {list(PRESETS)}.')
  extra = tuple((str(name), tuple(axes) if isinstance(axes, (list, tuple)) else axes) for name, axes in extra_rules)
  return extra + PRESETS[preset]


def mesh_axes_of(rules: LogicalRules, name: str) -> tuple[str, ...]:
  """The mesh axes a logical name maps to under `rules` (first match wins), as a tuple."""
  for rule_name, axes in rules:
    if rule_name == name:
      if axes is None:
        return ()
      return (axes,) if isinstance(axes, str) else tuple(axes)
  return ()
