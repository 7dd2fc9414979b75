"""One of the processes of the 2-process test (test_multihost.py): trains the tiny DiT on an
FSDP mesh that spans every process, then writes what the test checks.

python -m tests.parallel.multihost_worker PORT NUM_PROCESSES PROCESS_ID WORKDIR VAE_WORKDIR OUT
"""

from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np
from jax.experimental import multihost_utils

from vidgen import config_lib
from vidgen.parallel import distributed
from vidgen.train import trainers


def main(port: str, num_processes: str, process_id: str, workdir: str, vae_workdir: str, out: str) -> None:
  distributed.initialize(f'localhost:{port}', int(num_processes), int(process_id))
  config = config_lib.load_config('experiments/configs/dit_world.py:tiny', {
      'vae_workdir': vae_workdir, 'data.batch_size': 8, 'train.num_steps': 2, 'train.checkpoint_every': 2,
      'train.eval_every': 0, 'parallel.ici.data': 1, 'parallel.ici.fsdp': -1, 'parallel.rules': 'fsdp',
      'dit.scan_layers': True})  # the scanned layout: params stacked on a leading 'layers' axis
  trainer = trainers.make_trainer(config, workdir)
  first = next(iter(trainer.dataset()))  # this process's rows of the first global batch
  state = trainers.loop.run(trainer, workdir)
  kernel = state.params['denoiser']['blocks']['mlp']['fc1']['dense']['kernel']
  ema = multihost_utils.process_allgather(state.ema_params, tiled=True)
  if jax.process_index() == 0:
    np.savez(os.path.join(out, 'ema_params.npz'),
             **{jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(ema)})
  with open(os.path.join(out, f'process{jax.process_index()}.json'), 'w') as f:
    json.dump({'process_index': jax.process_index(), 'process_count': jax.process_count(),
               'local_devices': jax.local_device_count(), 'devices': jax.device_count(),
               'first_batch_indices': np.asarray(first['index']).tolist(),
               'fc1_kernel_spec': str(tuple(kernel.sharding.spec)),
               'fc1_kernel_shards': [list(s.data.shape) for s in kernel.addressable_shards],
               'step': int(state.step)}, f)


if __name__ == '__main__':
  main(*sys.argv[1:])
