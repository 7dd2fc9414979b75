"""A toy trainer for the shared loop's fault tests: linear regression on seeded random batches.

Small enough to start, compile and step in a second, so tests can kill, corrupt and poison runs
many times; its parameters are a few MB, so an async checkpoint save takes long enough to be
interrupted. The loop under test is the real one (vidgen/train/loop.py).

python -m tests.train.toy_trainer WORKDIR NUM_STEPS   (trains or resumes; used by the kill -9 test)
python -m tests.train.toy_trainer WORKDIR NUM_STEPS PORT NUM_PROCESSES PROCESS_ID   (one of several processes)
"""

from __future__ import annotations

import sys

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vidgen import config_blocks
from vidgen.parallel import distributed
from vidgen.parallel.mesh import ParallelConfig
from vidgen.train import loop
from vidgen.train.state import TrainState

WIDTH = 512  # 512 × 512 weights: 1 MB, with Adam moments and EMA 4 MB a checkpoint


class _Batches:
  """Record i: a seeded random x and its target; `poison_index`'s x is inf (a NaN loss)."""

  def __init__(self, poison_index: int):
    self.poison_index = poison_index

  def __len__(self):
    return 1_000_000

  def __getitem__(self, index):
    x = np.random.default_rng(index).normal(size=WIDTH).astype(np.float32)
    if index == self.poison_index:
      x[:] = np.inf
    return {'x': x, 'y': np.float32(np.sum(x[:8]))}


def toy_config(**train: object) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.train = config_blocks.to_config(loop.TrainConfig(**dict(dict(num_steps=20, log_every=1, eval_every=0,
                                                                       checkpoint_every=5), **train)))
  config.parallel = config_blocks.to_config(ParallelConfig())
  return config


class ToyTrainer:
  """The loop's Trainer protocol, in the smallest form that still checkpoints real state."""

  def __init__(self, config: ml_collections.ConfigDict, poison_index: int = -1, batch_size: int = 4):
    self.config = config
    self.poison_index = poison_index
    self.batch_size = batch_size
    self.optimizer = optax.adam(1e-3)

  def dataset(self) -> grain.IterDataset:
    ds = grain.MapDataset.source(_Batches(self.poison_index))[jax.process_index()::jax.process_count()]
    return ds.batch(self.batch_size).to_iter_dataset()

  def init_state(self, rng, batch):
    params = {'w': jax.random.normal(rng, (WIDTH, WIDTH)) * 0.01, 'v': jnp.zeros((WIDTH,))}
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=self.optimizer.init(params),
                      ema_params=params)

  def train_step(self, state, batch, rng):
    def loss_fn(params):
      h = jnp.tanh(batch['x'] @ params['w'])
      return jnp.mean((h @ params['v'] - batch['y']) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), {'loss': loss}

  def evaluate(self, state, step, workdir):
    return {}


def main(workdir: str, num_steps: str, port: str | None = None, num_processes: str = '1', process_id: str = '0'):
  if port is not None:
    distributed.initialize(f'localhost:{port}', int(num_processes), int(process_id))
    config = toy_config(num_steps=int(num_steps), checkpoint_every=100_000)  # saves only when preempted
  else:
    config = toy_config(num_steps=int(num_steps), checkpoint_every=1, keep_checkpoints=2)
  state = loop.run(ToyTrainer(config), workdir)
  print(f'process {jax.process_index()} stopped at step {int(state.step)}', flush=True)


if __name__ == '__main__':
  main(*sys.argv[1:])
