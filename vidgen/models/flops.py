"""Analytic model FLOPs and MFU, in one place: training logs, benchmarks and the compile tool.

FLOPs count 2 per multiply-add of every matmul (dense layers and the attention matmuls);
elementwise work is left out, as is remat recomputation (the MFU convention: useful model
FLOPs, not hardware FLOPs). A training step is 3 × forward (backward ≈ 2 × forward).
`dot_generals` / `traced_flops` read the same matmuls from a function's jaxpr: the tests check the
analytic count against them, and the DiT-step benchmark times each of a step's matmuls alone.
"""

from __future__ import annotations

import collections
import math
from typing import Any, Callable, Iterator

import jax

from vidgen.models import dit


def forward_flops(config: dit.DiTConfig, batch: int, num_frames: int, height: int, width: int,
                  text_len: int) -> float:
  """Matmul FLOPs (2 per multiply-add) of one forward pass, attention scores included.

  Counts every dense layer and the two attention matmuls (q·k and weights·v); ignores
  elementwise work (norms, softmax, activations), which is a few percent at real widths.
  """
  cfg = config
  t_frames, gh, gw = cfg.grid(num_frames, height, width)
  n, s, seq_len = t_frames * gh * gw, gh * gw, text_len
  d, dt, f, p = cfg.hidden_size, cfg.text_width, int(cfg.mlp_ratio * cfg.hidden_size), cfg.patch_dim
  in_context = cfg.conditioning == 'in_context'
  gated = cfg.conditioning != 'adaln'
  macs = n * p * d + n * cfg.patch[0] * d                     # patch and clean-flag embeddings
  macs += dit.TIME_FREQ_DIM * d + d * d + seq_len * dt * d         # timestep MLP, text projection
  if cfg.conditioning != 'cross_attention':
    macs += dt * d                                             # pooled text projection

  def attention(queries, keys, q_tokens, kv_tokens):
    """MACs of one attention layer: projections of q_tokens / kv_tokens rows, and scores."""
    return 2 * q_tokens * d * d + 2 * kv_tokens * d * d + 2 * queries * keys * d

  branches = 3 if cfg.attention == 'factorized' else 2
  block = d * (3 if gated else 2) * branches * d               # adaLN regression
  text_in_seq = seq_len if in_context else 0
  if cfg.attention == 'full':
    tokens = n + text_in_seq
    block += attention(tokens, tokens, tokens, tokens)
  else:
    per_frame = s + text_in_seq
    block += t_frames * attention(per_frame, per_frame, per_frame, per_frame)   # spatial
    block += s * attention(t_frames, t_frames, t_frames, t_frames)             # temporal
  if not in_context:
    context = seq_len + (1 if cfg.conditioning == 'cross_attention' else 0)
    block += attention(n, context, n, context)
  block += 2 * (n + text_in_seq) * d * f                        # MLP
  macs += cfg.num_layers * block
  macs += d * 2 * d + n * d * p                                # final adaLN and projection
  return float(2 * macs * batch)


def flops_per_step(config: dit.DiTConfig, batch: int, num_frames: int, height: int, width: int,
                   text_len: int) -> float:
  """Training FLOPs of one step (forward + backward ≈ 3 × forward matmul FLOPs), for MFU.

  num_frames/height/width are the latent grid's; remat recomputation is not counted (MFU
  convention).
  """
  return 3.0 * forward_flops(config, batch, num_frames, height, width, text_len)


def mfu(flops_per_step: float, step_seconds: float, num_chips: int, peak_flops_per_chip: float) -> float:
  """Model FLOPs utilisation: the fraction of the chips' peak the model's useful FLOPs reach."""
  return flops_per_step / step_seconds / (num_chips * peak_flops_per_chip)


def _sub_jaxprs(params: dict) -> Iterator[Any]:
  """The jaxprs inside an equation's params (a jit's, a custom_vjp's, a scan's body, cond's branches)."""
  for value in params.values():
    for item in value if isinstance(value, (tuple, list)) else (value,):
      if hasattr(item, 'jaxpr') and hasattr(item, 'consts'):  # a ClosedJaxpr
        yield item.jaxpr
      elif hasattr(item, 'eqns'):
        yield item


def dot_generals(fn: Callable, *args: Any) -> collections.Counter:
  """Every dot_general `fn(*args)` traces to, as (lhs shape, rhs shape, dtype, dimension numbers,
  result dtype) → how many times it runs (a scan's body counts once per iteration).

  What XLA is asked to multiply, read from the jaxpr: checks the analytic count above, and lets a
  benchmark time each matmul of a step alone.
  """
  counts = collections.Counter()

  def visit(jaxpr: Any, times: int) -> None:
    for eqn in jaxpr.eqns:
      if eqn.primitive.name == 'dot_general':
        lhs, rhs = (v.aval for v in eqn.invars)
        counts[(lhs.shape, rhs.shape, str(lhs.dtype), eqn.params['dimension_numbers'],
                eqn.params.get('preferred_element_type'))] += times
      inner = times * eqn.params['length'] if eqn.primitive.name == 'scan' else times
      for sub in _sub_jaxprs(eqn.params):
        visit(sub, inner)
  visit(jax.make_jaxpr(fn)(*args).jaxpr, 1)
  return counts


def dot_general_flops(lhs_shape: tuple[int, ...], rhs_shape: tuple[int, ...], dimension_numbers: Any) -> float:
  """2 × multiply-adds of one dot_general: batch × free × free × contracted sizes."""
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
  lhs_free = [n for i, n in enumerate(lhs_shape) if i not in (*lhs_contract, *lhs_batch)]
  rhs_free = [n for i, n in enumerate(rhs_shape) if i not in (*rhs_contract, *rhs_batch)]
  return 2.0 * math.prod(lhs_shape[d] for d in (*lhs_contract, *lhs_batch)) * math.prod(lhs_free) * math.prod(rhs_free)


def traced_flops(fn: Callable, *args: Any) -> float:
  """Matmul FLOPs of `fn(*args)` counted from its jaxpr (remat recomputation included, if any)."""
  return sum(count * dot_general_flops(lhs, rhs, dims) for (lhs, rhs, _, dims, _), count in
             dot_generals(fn, *args).items())
