"""Analytic model FLOPs and MFU, in one place: training logs, benchmarks and the compile tool.

FLOPs count 2 per multiply-add of every matmul (dense layers and the attention matmuls);
elementwise work is left out, as is remat recomputation (the MFU convention: useful model
FLOPs, not hardware FLOPs). A training step is 3 × forward (backward ≈ 2 × forward).
"""

from __future__ import annotations

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
