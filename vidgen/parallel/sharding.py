"""From logical annotations to shardings: the train state's, the batch's, and the checks.

The train state's shardings follow from the `nn.Partitioned` boxes that `init` leaves on the
parameters (and that optax's states inherit, since they are built by mapping over the
parameters); anything unboxed (step counter, statistics) is replicated.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import numpy as np
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec

from vidgen.parallel import mesh as mesh_lib
from vidgen.parallel.rules import LogicalRules, mesh_axes_of

_is_box = lambda x: isinstance(x, nn.Partitioned)


def _mesh_spec(names: tuple, shape: tuple[int, ...], mesh: jax.sharding.Mesh, rules: LogicalRules,
               where: str, uneven: list[str]) -> PartitionSpec:
  """The PartitionSpec of one array; a dim its mesh axes cannot split evenly stays whole."""
  axes = list(nn.logical_to_mesh_axes(names, rules)) if names else []
  for i, axis in enumerate(axes):
    group = () if axis is None else (axis,) if isinstance(axis, str) else tuple(axis)
    size = math.prod(mesh.shape[a] for a in group)
    if size > 1 and shape[i] % size:
      uneven.append(f'{where} dim {i} ({names[i]}={shape[i]}) over {"×".join(group)}={size}')
      axes[i] = None
  return PartitionSpec(*axes)


def state_shardings(abstract_state: Any, mesh: jax.sharding.Mesh, rules: LogicalRules) -> Any:
  """NamedShardings for the unboxed form of `abstract_state` (a boxed `jax.eval_shape` of init).

  A dimension that its mesh axes do not divide is replicated instead, with a warning naming it.
  """
  uneven: list[str] = []

  def one(path, leaf):
    where = jax.tree_util.keystr(path)
    if _is_box(leaf):
      return NamedSharding(mesh, _mesh_spec(tuple(leaf.names), leaf.value.shape, mesh, rules, where, uneven))
    return NamedSharding(mesh, PartitionSpec())

  shardings = jax.tree_util.tree_map_with_path(one, abstract_state, is_leaf=_is_box)
  if uneven:
    logging.warning('Replicated instead of sharded (size not divisible): %s%s', '; '.join(uneven[:8]),
                    f' and {len(uneven) - 8} more' if len(uneven) > 8 else '')
  return shardings


def shaped_like(abstract_state: Any, shardings: Any) -> Any:
  """`jax.ShapeDtypeStruct`s of the unboxed state carrying `shardings` (what Orbax restores into)."""
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                      nn.unbox(abstract_state), shardings)


def put(tree: Any, shardings: Any) -> Any:
  """Each leaf on its sharding; works across processes (each process supplies its own shards)."""
  def one(x, s):
    if isinstance(x, jax.Array) and x.sharding == s:
      return x
    value = np.asarray(x)
    return jax.make_array_from_callback(value.shape, s, lambda index: value[index])
  return jax.tree.map(one, tree, shardings)


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Leading (batch) dim over data × fsdp; the rest replicated."""
  return NamedSharding(mesh, PartitionSpec(mesh_lib.BATCH_AXES))


def check_global_batch(global_batch: int, mesh: jax.sharding.Mesh) -> None:
  """The global batch must split evenly over data × fsdp (and over the processes)."""
  ways = mesh_lib.batch_parallelism(mesh)
  if global_batch % ways:
    raise ValueError(f'data.batch_size={global_batch} is not divisible by the data-parallel size '
                     f'data×fsdp={mesh.shape["data"]}×{mesh.shape["fsdp"]}={ways}; use a multiple of {ways}.')


def shard_batch(batch: Mapping[str, Any], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
  """Global arrays from this process's slice of the batch (each process passes its own rows)."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}


def check_model_dims(mesh: jax.sharding.Mesh, rules: LogicalRules, *, heads: int | None = None,
                     tokens: int | None = None) -> None:
  """Heads must split over what `activation_heads` maps to, tokens over `activation_length`'s."""
  for what, count, name in (('attention heads', heads, 'activation_heads'),
                            ('video tokens', tokens, 'activation_length')):
    axes = mesh_axes_of(rules, name)
    ways = math.prod(mesh.shape[a] for a in axes)
    if count is not None and ways > 1 and count % ways:
      raise ValueError(f'The model has {count} {what}, which the mesh splits {ways} ways over '
                       f'{"×".join(axes)} ({mesh_lib.describe(mesh)}); pick sizes where {ways} divides {count}.')


def sharding_table(shardings: Any) -> dict[str, str]:
  """{'params/blocks/attn/query/kernel': "PartitionSpec(None, 'fsdp', ...)"} for logs and golden tests."""
  leaves = jax.tree_util.tree_leaves_with_path(shardings, is_leaf=lambda x: isinstance(x, NamedSharding))
  return {jax.tree_util.keystr(p, simple=True, separator='/'): str(tuple(s.spec)) for p, s in leaves}
