"""One sharded init and one sharded train step, for any trainer, on any mesh (1 device or a pod).

    eval_shape(init) → logical partition specs → mesh shardings → jit(init, out_shardings)
    jit(step, in_shardings=(state, batch), out_shardings=(state, replicated), donate state)

Full parameters never sit on one device: init runs already sharded. The step draws its
randomness from (seed, state.step) inside the jitted function, so it takes no host-made key
(which a multi-host mesh could not accept) and a resumed run draws the same numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from vidgen.parallel import sharding as sharding_lib
from vidgen.parallel.rules import LogicalRules

InitFn = Callable[[jax.Array, Mapping[str, Any]], Any]
StepFn = Callable[[Any, Mapping[str, Any], jax.Array], tuple[Any, dict[str, jax.Array]]]


@dataclasses.dataclass
class PartitionedTraining:
  """A trainer's init and step, jitted with the shardings of a mesh and its rules."""
  mesh: jax.sharding.Mesh
  rules: LogicalRules
  state_shardings: Any          # NamedShardings, shaped like the (unboxed) train state
  abstract_state: Any           # ShapeDtypeStructs carrying those shardings (restore target)
  batch_shapes: dict[str, jax.ShapeDtypeStruct]  # the global batch, sharded over data × fsdp
  _init: Any
  _step: Any

  @contextlib.contextmanager
  def context(self):
    """The mesh and rules that `nn.with_logical_constraint` reads while tracing."""
    with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
      yield

  def init(self) -> Any:
    """A fresh, sharded train state (traced without the mesh context: `out_shardings` place the
    parameters, and flax's DenseGeneral would constrain a kernel in its pre-reshape form)."""
    return self._init()

  def place(self, state: Any) -> Any:
    """`state` (e.g. after a host-side update of some leaves) on the state's shardings."""
    return sharding_lib.put(state, self.state_shardings)

  def step(self, state: Any, local_batch: Mapping[str, Any]) -> tuple[Any, dict[str, jax.Array]]:
    """One optimisation step on this process's rows of the global batch (state is donated)."""
    batch = sharding_lib.shard_batch(local_batch, self.mesh)
    with self.context():
      return self._step(state, batch)

  def lower_step(self) -> jax.stages.Lowered:
    """The step lowered for the abstract state and batch (ahead-of-time compilation)."""
    with self.context():
      return self._step.lower(self.abstract_state, self.batch_shapes)

  def jit(self, fn: Callable, **kwargs) -> Callable:
    """`jax.jit(fn)` whose calls trace under this mesh and rules (evaluation, tests)."""
    jitted = jax.jit(fn, **kwargs)

    @functools.wraps(fn)
    def call(*args, **kw):
      with self.context():
        return jitted(*args, **kw)
    return call


def partition_training(init_fn: InitFn, step_fn: StepFn, mesh: jax.sharding.Mesh, rules: LogicalRules,
                       global_batch: Mapping[str, Any], seed: int) -> PartitionedTraining:
  """Jits `init_fn(rng, batch)` and `step_fn(state, batch, rng)` for `mesh` under `rules`.

  Args:
    init_fn: a fresh state, parameters boxed with logical names (`nn.Partitioned`); only the
      batch's shapes are read.
    step_fn: one step; pure.
    mesh, rules: where and how to shard.
    global_batch: arrays (or ShapeDtypeStructs) of the *global* batch's shapes.
    seed: init draws from `split(key(seed))[0]`; the step from `fold_in(split(key(seed))[1], state.step)`.
  """
  sharding_lib.check_global_batch(next(iter(global_batch.values())).shape[0], mesh)
  batch_sharding = sharding_lib.batch_sharding(mesh)
  batch_shapes = {k: jax.ShapeDtypeStruct(np.shape(v), jax.dtypes.canonicalize_dtype(v.dtype),
                                          sharding=batch_sharding) for k, v in global_batch.items()}
  zeros = lambda: {k: jnp.zeros(v.shape, v.dtype) for k, v in batch_shapes.items()}

  boxed = jax.eval_shape(lambda rng: init_fn(rng, zeros()), jax.random.key(0))
  shardings = sharding_lib.state_shardings(boxed, mesh, rules)
  replicated = NamedSharding(mesh, PartitionSpec())

  def init():
    return nn.unbox(init_fn(jax.random.split(jax.random.key(seed))[0], zeros()))

  def step(state, batch):
    rng = jax.random.fold_in(jax.random.split(jax.random.key(seed))[1], state.step)
    return step_fn(state, batch, rng)

  return PartitionedTraining(
      mesh=mesh, rules=rules, state_shardings=shardings,
      abstract_state=sharding_lib.shaped_like(boxed, shardings), batch_shapes=batch_shapes,
      _init=jax.jit(init, out_shardings=shardings),
      _step=jax.jit(step, in_shardings=(shardings, {k: batch_sharding for k in batch_shapes}),
                    out_shardings=(shardings, replicated), donate_argnums=(0,)))
