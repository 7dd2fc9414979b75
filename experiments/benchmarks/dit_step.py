"""DiT training-step speed: step time, tokens/s, model FLOPs, achieved FLOP/s and MFU on this machine.

  python experiments/benchmarks/dit_step.py [--sizes S,B] [--tokens 64,256] [--batch 8] [--steps 5]

MFU is measured against a matmul peak the script measures on the same machine (the best
float32 GFLOP/s of square matmuls), so it says how much of what this CPU can do the DiT step
uses. Model FLOPs are analytic (`vidgen.models.flops.flops_per_step`: 3 × forward matmul FLOPs,
attention included). Then a profile: the same step's parts timed alone (attention, MLP,
norms + modulation, the optimizer update), each forward + backward, × depth.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from vidgen.models import dit as dit_lib  # noqa: E402
from vidgen.models import flops as flops_lib  # noqa: E402
from vidgen.models import layers  # noqa: E402

TEXT_LEN = 16


def best_time(fn, *args, repeats: int = 5) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times)


def matmul_peak() -> float:
  """Best float32 FLOP/s of square matmuls on this machine."""
  best = 0.0
  for n in (512, 1024, 2048):
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda a: a @ a)
    best = max(best, 2 * n ** 3 / best_time(f, a))
  return best


def latent_grid(tokens: int, patch=(1, 2, 2)) -> tuple[int, int, int]:
  """A (T, H, W) latent grid with `tokens` tokens: 4 latent frames, square frames."""
  frames = 4 if tokens >= 16 else 1
  side = int(round((tokens / frames) ** 0.5))
  return frames * patch[0], side * patch[1], side * patch[2]


def train_step_fn(model, optimizer):
  def loss_fn(params, x, t, text, text_mask):
    return jnp.mean((model.apply({'params': params}, x, t, text, text_mask) - x) ** 2)

  @jax.jit
  def step(params, opt_state, x, t, text, text_mask):
    grads = jax.grad(loss_fn)(params, x, t, text, text_mask)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
  return step


def part_times(config: dit_lib.DiTConfig, batch: int, tokens: int) -> dict[str, float]:
  """Forward + backward of one block's parts alone, × depth; and the optimizer update."""
  d, heads = config.hidden_size, config.num_heads
  x = jax.random.normal(jax.random.key(0), (batch, tokens, d))
  text = jax.random.normal(jax.random.key(1), (batch, TEXT_LEN, d))
  c = jax.random.normal(jax.random.key(2), (batch, d))
  parts = {
      'self-attention': (layers.Attention(heads, d // heads), lambda m, p: m.apply(p, x)),
      'cross-attention': (layers.Attention(heads, d // heads), lambda m, p: m.apply(p, x, text)),
      'MLP': (layers.Mlp(config.mlp_ratio), lambda m, p: m.apply(p, x)),
      'norms + adaLN': (layers.AdaLNModulation(6, d), lambda m, p: sum(
          layers.modulate(layers.LayerNorm().apply({}, x), s, sc).sum()
          for s, sc in zip(*[iter(m.apply(p, c))] * 2))),
  }
  out = {}
  for name, (module, call) in parts.items():
    params = module.init(jax.random.key(3), *((x, text) if name == 'cross-attention' else (c,) if
                                               name == 'norms + adaLN' else (x,)))
    grad = jax.jit(jax.grad(lambda p: jnp.sum(call(module, p))))
    out[name] = best_time(grad, params) * config.num_layers
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sizes', default='S,B')
  parser.add_argument('--tokens', default='64,256')
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()

  peak = matmul_peak()
  print(f'{os.cpu_count()} CPUs; jax {jax.__version__}; measured float32 matmul peak {peak / 1e9:.1f} GFLOP/s\n')
  print('| DiT | tokens | batch | step s | tokens/s | model GFLOP/step | GFLOP/s | MFU |')
  print('|---|---|---|---|---|---|---|---|')
  profiles = []
  for size in args.sizes.split(','):
    for tokens in (int(t) for t in args.tokens.split(',')):
      config = dit_lib.DiTConfig(size=size, patch=(1, 2, 2), latent_channels=4, text_width=256)
      model = dit_lib.DiT(config)
      t_, h, w = latent_grid(tokens)
      inputs = dit_lib.example_inputs(config, batch=args.batch, num_frames=t_, height=h, width=w,
                                      text_len=TEXT_LEN)
      params = nn.unbox(model.init(jax.random.key(0), inputs['x'][:1], inputs['t'][:1], inputs['text'][:1],
                                   inputs['text_mask'][:1]))['params']
      optimizer = optax.adamw(1e-4)
      opt_state = optimizer.init(params)
      step = train_step_fn(model, optimizer)
      x = jax.random.normal(jax.random.key(1), inputs['x'].shape)
      run = lambda: step(params, opt_state, x, inputs['t'], inputs['text'], inputs['text_mask'])
      seconds = best_time(lambda: run(), repeats=args.repeats)
      n = config.num_tokens(t_, h, w)
      flops = flops_lib.flops_per_step(config, args.batch, t_, h, w, TEXT_LEN)
      print(f'| {size}/2 ({dit_lib.count_params(params) / 1e6:.0f}M) | {n} | {args.batch} | {seconds:.3f} | '
            f'{args.batch * n / seconds:.0f} | {flops / 1e9:.1f} | {flops / seconds / 1e9:.1f} | '
            f'{flops / seconds / peak:.0%} |', flush=True)
      parts = part_times(config, args.batch, n)
      parts['optimizer (AdamW)'] = best_time(jax.jit(lambda p, s: optimizer.update(p, s, p)), params, opt_state)
      profiles.append((f'{size}/2, {n} tokens', seconds, parts))

  print('\nWhere the time goes (each part alone, forward + backward, × depth; share of the step):\n')
  for name, seconds, parts in profiles:
    shown = ', '.join(f'{k} {v * 1000:.0f} ms ({v / seconds:.0%})' for k, v in parts.items())
    print(f'- {name}: step {seconds * 1000:.0f} ms; {shown}')


if __name__ == '__main__':
  main()
