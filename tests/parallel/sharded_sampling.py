"""Loads a trained run sharded onto 8 devices (fsdp × tensor) and samples; prints JSON to compare.

Run in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=8 and the run's
workdir as the argument (see test_sharded_sampling.py).
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np

from vidgen import config_lib
from vidgen.generation import Settings, VideoGenerator
from vidgen.parallel import mesh as mesh_lib
from vidgen.parallel import rules as rules_lib


def main(workdir: str) -> None:
  parallel = config_lib.read_saved_config(workdir).parallel
  parallel.ici.update(data=2, fsdp=2, tensor=2, sequence=1)
  mesh = mesh_lib.make_mesh(parallel)
  rules = rules_lib.logical_rules('fsdp_tensor')
  sharded = VideoGenerator.from_workdir(workdir, mesh=mesh, rules=rules)
  prompts = ['a red circle moves to the right', 'a small blue square']
  settings = Settings(steps=2, seed=3)
  clip = sharded.generate(prompts, settings)
  extended = sharded.extend(clip, prompts, 4, 'forward', settings)
  leaves = jax.tree.leaves(sharded.params)
  print(json.dumps({
      'devices': len(jax.devices()),
      'sharded_leaves': sum(len(l.sharding.device_set) == 8 and not l.sharding.is_fully_replicated for l in leaves),
      'leaves': len(leaves),
      'video': np.asarray(clip).tolist(), 'extended': np.asarray(extended).tolist()}))


if __name__ == '__main__':
  main(sys.argv[1])
