"""Compile a config's training step ahead of time for a Cloud TPU slice, on a machine without one.

  python -m vidgen.tools.compile --config experiments/configs/dit_xl2_256.py --topology v5p-128
  python -m vidgen.tools.compile --config experiments/configs/video_3b_512.py --topology v5p-256 --out r.json

Builds the same sharded step `python -m vidgen.train` runs (vidgen/parallel/partition.py) over
compile-only devices from libtpu, compiles it with XLA:TPU, and prints per-chip memory
(arguments, outputs, temporaries, against the chip's HBM), XLA's FLOP and byte counts with
its step-time estimate (`optimal_seconds`) and a roofline one (FLOPs at peak or bytes at HBM
bandwidth, whichever is slower; collectives not counted), and the analytic model FLOPs
(vidgen/models/flops.py) with the MFU each estimate implies. When the step does not fit it
says which knob to turn.

DiT configs compile the step on cached latents (the frozen VAE is not part of it); the latent
shape comes from `config.vae` (an architecture block) or the run in `config.vae_workdir`.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from absl import app, flags

from vidgen import config_lib, entrypoint
from vidgen.models import vae as vae_lib
from vidgen.parallel import mesh as mesh_lib
from vidgen.parallel import topology as topology_lib
from vidgen.train import loop

config_lib.define_flags()
flags.DEFINE_string('topology', None, 'TPU slice, e.g. v5p-128, v5e-16, v6e-64, v4-32 (or v5p:4x4x4).')
flags.DEFINE_string('out', None, 'Also write the report as JSON here.')

GB = 1e9


def _sds(shape, dtype) -> jax.ShapeDtypeStruct:
  return jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype))


def trainer_and_batch(config: ml_collections.ConfigDict) -> tuple[Any, dict[str, jax.ShapeDtypeStruct]]:
  """The config's trainer, built from shapes alone, and the abstract global batch of its step."""
  data, b = config.data, config.data.batch_size
  if config.model == 'vae':
    from vidgen.train.vae_trainer import VAETrainer
    return VAETrainer(config), {'video': _sds((b, data.num_frames, data.height, data.width, 3), jnp.float32)}
  if config.model != 'dit':
    raise config_lib.ConfigError(f"config.model={config.model!r}: the compile tool knows 'vae' and 'dit'.")
  from vidgen.train.dit_trainer import DiTTrainer
  if config.vae is not None:
    vae_block = config.vae
  elif config.vae_workdir:
    vae_block = config_lib.read_saved_config(config.vae_workdir).vae
  else:
    raise config_lib.ConfigError('A DiT config needs its VAE\'s architecture to know the latent shape: add a '
                                 '`vae` block to the config or pass --config.vae_workdir=A_VAE_RUN.')
  vae = vae_lib.VAE(vae_lib.VAEConfig.from_config(vae_block))
  trainer = DiTTrainer(config, None, vae=vae, vocab_size=data.tokenizer.vocab_size)
  latents = (b,) + tuple(trainer.latent_shape)
  length = data.tokenizer.max_length
  return trainer, {'latent_mean': _sds(latents, jnp.float32), 'latent_logvar': _sds(latents, jnp.float32),
                   'text_ids': _sds((b, length), jnp.int32), 'text_mask': _sds((b, length), jnp.bool_)}


def _cost(compiled) -> dict[str, float]:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  return dict(cost or {})


def _compile(config: ml_collections.ConfigDict, devices: list[Any]):
  trainer, batch = trainer_and_batch(config)
  training = loop.partition(trainer, batch, devices)
  return trainer, training, training.lower_step().compile()


def layer_cost(config: ml_collections.ConfigDict, devices: list[Any]) -> dict[str, float]:
  """XLA's cost of the full-depth DiT step, from unrolled 1- and 2-layer compiles.

  XLA's cost analysis counts a loop body once, so a step whose layers go through `nn.scan`
  reports one layer's FLOPs. Cost is linear in depth: c(L) = c(1) + (L - 1)(c(2) - c(1)).
  """
  from vidgen.models import dit as dit_lib
  depth = dit_lib.DiTConfig.from_config(config.dit).num_layers
  costs = []
  for layers in (1, 2):
    shallow = copy.deepcopy(config)
    shallow.dit.update(depth=layers, scan_layers=False)
    costs.append(_cost(_compile(shallow, devices)[2]))
  keys = ('flops', 'optimal_seconds', 'bytes accessed')  # each linear in depth
  return {k: costs[0][k] + (depth - 1) * (costs[1][k] - costs[0][k]) for k in keys if k in costs[0] and k in costs[1]}


def compile_report(config: ml_collections.ConfigDict, topology_name: str) -> dict[str, Any]:
  """Compiles the training step of `config` for `topology_name`; returns the figures as a dict."""
  topology = topology_lib.parse(topology_name)
  devices = topology.devices()
  start = time.time()
  trainer, training, compiled = _compile(config, devices)
  compile_seconds = time.time() - start
  mem = compiled.memory_analysis()
  scanned = config.model == 'dit' and config.dit.scan_layers
  cost = layer_cost(config, devices) if scanned else _cost(compiled)
  chip = topology.chip
  total = (mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes
           + mem.temp_size_in_bytes + mem.generated_code_size_in_bytes)
  params = sum(x.size for x in jax.tree.leaves(training.abstract_state.params))
  model_flops = trainer.flops_per_step() if hasattr(trainer, 'flops_per_step') else None
  xla_seconds = cost.get('optimal_seconds')
  if xla_seconds is not None and xla_seconds <= 0:
    xla_seconds = None  # XLA's estimate is not always usable (e.g. negative after extrapolation)
  # Roofline: the chip busy with XLA's FLOPs at peak, or with its bytes at HBM bandwidth.
  roofline = (max(cost['flops'] / chip.peak_bf16_flops, cost.get('bytes accessed', 0.0) / chip.hbm_bandwidth)
              if cost.get('flops') else None)
  mfu = lambda seconds: (model_flops / (seconds * topology.num_chips * chip.peak_bf16_flops)
                         if model_flops and seconds else None)
  report = {
      'config': config.name, 'topology': topology.name, 'chip': chip.name,
      'chips': topology.num_chips, 'mesh': mesh_lib.describe(training.mesh),
      'rules': config.parallel.rules, 'global_batch': config.data.batch_size,
      'parameters': int(params), 'compile_seconds': round(compile_seconds, 1),
      'memory_per_chip': {
          'arguments': mem.argument_size_in_bytes, 'outputs': mem.output_size_in_bytes,
          'aliased (donated)': mem.alias_size_in_bytes, 'temporaries': mem.temp_size_in_bytes,
          'code': mem.generated_code_size_in_bytes, 'total': total, 'hbm': chip.hbm_bytes},
      'fits': total <= chip.hbm_bytes,
      'xla_flops_per_chip': cost.get('flops'),
      'xla_bytes_per_chip': cost.get('bytes accessed'),
      'xla_step_seconds': xla_seconds,
      'roofline_step_seconds': roofline,
      'model_flops_per_step': model_flops,
      'implied_mfu': mfu(xla_seconds),
      'roofline_mfu': mfu(roofline),
  }
  report['advice'] = advice(report, config)
  return report


def advice(report: dict[str, Any], config: ml_collections.ConfigDict) -> list[str]:
  """Which knob to turn when the step does not fit (empty when it fits)."""
  if report['fits']:
    return []
  mem, tips = report['memory_per_chip'], []
  parallel = config.parallel
  if mem['temporaries'] >= mem['arguments']:
    remat = config.dit.remat if 'dit' in config else 'none'
    if remat in ('none', 'dots', 'dots_no_batch'):
      tips.append(f"activations dominate ({mem['temporaries'] / GB:.1f} GB temporaries): set "
                  f"--config.dit.remat={'dots' if remat == 'none' else 'full'} to recompute them in the backward pass")
    tips.append('or lower data.batch_size (the per-chip batch), or split tokens with '
                '--config.parallel.rules=fsdp_sequence and parallel.ici.sequence>1')
  else:
    if parallel.rules == 'data_parallel':
      tips.append(f"parameters and optimizer state dominate ({mem['arguments'] / GB:.1f} GB): shard them with "
                  '--config.parallel.rules=fsdp and a larger parallel.ici.fsdp')
    else:
      tips.append(f"parameters and optimizer state dominate ({mem['arguments'] / GB:.1f} GB): raise "
                  'parallel.ici.fsdp (and lower parallel.ici.data), or add tensor parallelism (fsdp_tensor)')
  return tips


def _si(value: float, unit: str) -> str:
  """12.3 GB, 456 MFLOP: three significant figures in the nearest power-of-1000 unit."""
  for scale, prefix in ((1e15, 'P'), (1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'k')):
    if abs(value) >= scale:
      return f'{value / scale:.3g} {prefix}{unit}'
  return f'{value:.3g} {unit}'


def format_report(r: dict[str, Any]) -> str:
  mem = r['memory_per_chip']
  lines = [f"{r['config'] or 'config'} on {r['topology']} ({r['chips']} × {r['chip']}); mesh {r['mesh']}, "
           f"rules {r['rules']}; global batch {r['global_batch']}; {_si(r['parameters'], '')} parameters; "
           f"compiled in {r['compile_seconds']:.0f}s",
           'memory per chip: ' + ', '.join(f'{k} {_si(v, "B")}' for k, v in mem.items() if k != 'hbm')
           + f" of {_si(mem['hbm'], 'B')} HBM → " + ('fits' if r['fits'] else 'DOES NOT FIT')]
  if r['xla_flops_per_chip'] is not None:
    line = (f"XLA: {_si(r['xla_flops_per_chip'], 'FLOP')} and {_si(r['xla_bytes_per_chip'] or 0, 'B')} of HBM "
            f"traffic per chip per step ({_si(r['xla_flops_per_chip'] * r['chips'], 'FLOP')} in all); step time "
            f"estimated by XLA " + (f"{r['xla_step_seconds'] * 1e3:.3g} ms" if r['xla_step_seconds'] else 'n/a')
            + f", by the roofline {r['roofline_step_seconds'] * 1e3:.3g} ms")
    lines.append(line)
  if r['model_flops_per_step']:
    implied = [f'{m:.1%} at {name}' for name, m in (("XLA's estimate", r['implied_mfu']),
                                                    ('the roofline', r['roofline_mfu'])) if m]
    lines.append(f"model: {_si(r['model_flops_per_step'], 'FLOP')} per step (analytic); implied MFU "
                 + ', '.join(implied))
  lines += [f'to fit: {tip}' for tip in r['advice']]
  return '\n'.join(lines)


def main(argv):
  del argv
  if not flags.FLAGS.topology:
    raise app.UsageError('--topology is required, e.g. --topology v5p-128.')
  config = config_lib.config_from_flags()
  report = compile_report(config, flags.FLAGS.topology)
  print(format_report(report), flush=True)
  if flags.FLAGS.out:
    with open(flags.FLAGS.out, 'w') as f:
      json.dump(report, f, indent=2)


if __name__ == '__main__':
  entrypoint.run(main, flags_parser=config_lib.parse_flags_with_overrides)
