"""The same DiT training step in PyTorch (eager), as a reference on the same machine.

  python experiments/benchmarks/torch_dit_reference.py --case B:64 [--tokens_per_step 2048]

The issue that set the MFU goal took its numbers from a well-tuned PyTorch DiT on a 2-core CPU.
A matmul peak moves between machines (AVX-512 or not) and, on a shared VM, from one minute to
the next, so `dit_step.py --torch` runs this reference right after each JAX case, against the
same measured peak: the two step times say how the JAX step compares on that machine, then.

The network is vidgen's DiT with its defaults ('adaln_zero' conditioning, 'full' attention):
patch and clean-flag embeddings, timestep MLP + pooled text, blocks of adaLN-Zero self-attention
with QK-RMSNorm and 3D RoPE, cross-attention to the text tokens and a GELU (tanh) MLP, and the
adaLN final layer. The script checks that its parameter count equals `dit.count_params` for the
same config, and takes the model FLOPs from `vidgen.models.flops`, so both steps are scored on
the same work. The step is AdamW on the mean squared error, as in `dit_step.py`.

Needs PyTorch, which vidgen does not: `pip install torch` (the CPU build is enough).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

from dit_step import TEXT_LEN, latent_grid  # noqa: E402  (the JAX benchmark's inputs)
from vidgen import host_memory  # noqa: E402
from vidgen.models import dit as dit_lib  # noqa: E402
from vidgen.models import flops as flops_lib  # noqa: E402
from vidgen.models import layers  # noqa: E402

try:
  import torch
  import torch.nn.functional as F
  from torch import nn
except ImportError:  # pragma: no cover - depends on the machine
  sys.exit('torch_dit_reference.py needs PyTorch: pip install torch (CPU build), then rerun.')

TEXT_WIDTH = 256
TIME_FREQ_DIM = dit_lib.TIME_FREQ_DIM


class RMSNorm(nn.Module):
  def __init__(self, dim: int):
    super().__init__()
    self.scale = nn.Parameter(torch.ones(dim))

  def forward(self, x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.scale


def apply_rope(x, cos, sin):
  """x [B, H, N, Dh] rotated by cos/sin [B, 1, N, Dh/2] (pairs (i, i + Dh/2), as vidgen's)."""
  x1, x2 = x.chunk(2, dim=-1)
  return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attention(nn.Module):
  def __init__(self, width: int, heads: int, context_width: int | None = None):
    super().__init__()
    self.heads = heads
    kv_width = context_width or width
    self.query, self.key = nn.Linear(width, width), nn.Linear(kv_width, width)
    self.value, self.out = nn.Linear(kv_width, width), nn.Linear(width, width)
    self.query_norm, self.key_norm = RMSNorm(width // heads), RMSNorm(width // heads)

  def forward(self, x, context=None, rope=None):
    b, n, d = x.shape
    kv = x if context is None else context
    split = lambda y: y.view(b, y.shape[1], self.heads, -1).transpose(1, 2)
    q, k, v = self.query_norm(split(self.query(x))), self.key_norm(split(self.key(kv))), split(self.value(kv))
    if rope is not None:
      q, k = apply_rope(q, *rope), apply_rope(k, *rope)
    y = F.scaled_dot_product_attention(q, k, v)
    return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
  def __init__(self, width: int, heads: int):
    super().__init__()
    self.adaln = nn.Linear(width, 6 * width)
    self.norm1 = nn.LayerNorm(width, eps=1e-6, elementwise_affine=False)
    self.attn = Attention(width, heads)
    self.norm_cross = nn.LayerNorm(width, eps=1e-6)
    self.cross_attn = Attention(width, heads)
    self.norm2 = nn.LayerNorm(width, eps=1e-6, elementwise_affine=False)
    self.fc1, self.fc2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

  def forward(self, x, c, context, rope):
    shift1, scale1, gate1, shift2, scale2, gate2 = self.adaln(F.silu(c)).unsqueeze(1).chunk(6, dim=-1)
    x = x + gate1 * self.attn(self.norm1(x) * (1 + scale1) + shift1, rope=rope)
    x = x + self.cross_attn(self.norm_cross(x), context)
    h = F.gelu(self.fc1(self.norm2(x) * (1 + scale2) + shift2), approximate='tanh')
    return x + gate2 * self.fc2(h)


class DiT(nn.Module):
  def __init__(self, depth: int, width: int, heads: int, patch_dim: int, frames_per_token: int):
    super().__init__()
    self.patch_embed = nn.Linear(patch_dim, width)
    self.cond_embed = nn.Linear(frames_per_token, width, bias=False)
    self.t_embed1, self.t_embed2 = nn.Linear(TIME_FREQ_DIM, width), nn.Linear(width, width)
    self.pooled_text_proj, self.text_proj = nn.Linear(TEXT_WIDTH, width), nn.Linear(TEXT_WIDTH, width)
    self.blocks = nn.ModuleList([Block(width, heads) for _ in range(depth)])
    self.final_adaln = nn.Linear(width, 2 * width)
    self.final_norm = nn.LayerNorm(width, eps=1e-6, elementwise_affine=False)
    self.final_proj = nn.Linear(width, patch_dim)

  def forward(self, tokens, flags, t, text, rope):
    half = TIME_FREQ_DIM // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = t[:, None] * dit_lib.TIME_SCALE * freqs
    temb = torch.cat([angles.cos(), angles.sin()], dim=-1)
    c = self.t_embed2(F.silu(self.t_embed1(temb))) + self.pooled_text_proj(text.mean(1))
    context = self.text_proj(text)
    h = self.patch_embed(tokens) + self.cond_embed(flags)
    for block in self.blocks:
      h = block(h, c, context, rope)
    shift, scale = self.final_adaln(F.silu(c)).unsqueeze(1).chunk(2, dim=-1)
    return self.final_proj(self.final_norm(h) * (1 + scale) + shift)


def rope_tables(config: dit_lib.DiTConfig, batch: int, grid: tuple[int, int, int]):
  """cos/sin [B, 1, N, Dh/2] of vidgen's own 3D RoPE (`layers.rope_3d` at `dit.token_positions`)."""
  cos, sin = layers.rope_3d(dit_lib.token_positions(batch, grid), config.head_dim, theta=config.rope_theta)
  return tuple(torch.from_numpy(np.array(a))[:, None] for a in (cos, sin))


def matmul_peak() -> float:
  """Best float32 FLOP/s of square torch matmuls (dit_step.py's measure, in PyTorch)."""
  best = 0.0
  for n in (512, 1024, 2048):
    a = torch.randn(n, n)
    a @ a
    for _ in range(10):
      start = time.perf_counter()
      a @ a
      best = max(best, 2 * n ** 3 / (time.perf_counter() - start))
  return best


def run_case(size: str, tokens: int, tokens_per_step: int, repeats: int) -> dict:
  """Times the reference step for a DiT size and token count; returns its row."""
  config = dit_lib.DiTConfig(size=size, patch=(1, 2, 2), latent_channels=4, text_width=TEXT_WIDTH)
  batch = max(1, tokens_per_step // tokens)
  frames, height, width = latent_grid(tokens)
  grid = config.grid(frames, height, width)
  depth, dim, heads = config.dims
  torch.manual_seed(0)
  model = DiT(depth, dim, heads, config.patch_dim, config.patch[0])
  num_params = sum(p.numel() for p in model.parameters())
  expected = dit_lib.count_params(config)
  if num_params != expected:
    raise RuntimeError(f'The PyTorch reference has {num_params} parameters, vidgen DiT-{size} {expected}: '
                       'the two networks differ.')
  n = int(math.prod(grid))
  x = torch.randn(batch, n, config.patch_dim)
  flags = torch.zeros(batch, n, config.patch[0])
  t, text = torch.rand(batch), torch.randn(batch, TEXT_LEN, TEXT_WIDTH)
  rope = rope_tables(config, batch, grid)
  optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

  def step():
    optimizer.zero_grad(set_to_none=True)
    (model(x, flags, t, text, rope) - x).pow(2).mean().backward()
    optimizer.step()

  step()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  return dict(name=f'{size}/2 ({num_params / 1e6:.0f}M)', tokens=n, batch=batch, seconds=min(times),
              flops=flops_lib.flops_per_step(config, batch, frames, height, width, TEXT_LEN),
              torch=torch.__version__, threads=torch.get_num_threads(), torch_peak=matmul_peak())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--case', required=True, help='SIZE:TOKENS, e.g. B:64')
  parser.add_argument('--tokens_per_step', type=int, default=2048, help='batch = tokens_per_step / tokens')
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  host_memory.keep_freed_memory()  # as the JAX case ran (VIDGEN_HOST_MALLOC decides)
  size, tokens = args.case.split(':')
  print(json.dumps(run_case(size, int(tokens), args.tokens_per_step, args.repeats)))


if __name__ == '__main__':
  main()
