"""A ~3B-parameter video DiT at 512×512 × 65 frames with sequence parallelism, for a TPU pod.

Latents 17×64×64×16 (VAE 4×8×8, 16 channels), patch 1×2×2: 17,408 tokens per video, so the
token axis is split over `sequence` (rules fsdp_sequence: each chip keeps its queries, keys and
values are all-gathered; parameters are sharded over fsdp × sequence) and every block is
rematerialised. Depth 32, width 2048, 16 heads.

Compile ahead of time for a slice (no TPU needed):
  python -m vidgen.tools.compile --config experiments/configs/video_3b_512.py --topology v5p-256
Measured by the compile tool (experiments/tpu/RESULTS.md), v5p-256 (128 chips), fsdp 16 ×
sequence 8, global batch 16: 3.11B parameters, 7.46 GB per chip of 102 GB (fits); roofline
step 561 ms (HBM bound), implied MFU 21% (XLA's own estimate is unusable for this step).
"""

import ml_collections

from experiments.configs import dit_xl2_256


def get_config(arg=None) -> ml_collections.ConfigDict:
  config = dit_xl2_256.get_config()
  config.name = 'video_3b_512'
  config.data.update(num_frames=65, height=512, width=512, batch_size=16)
  config.dit.update(size='XL', depth=32, width=2048, heads=16, remat='full')
  config.text.update(width=1024, depth=8, heads=16)
  config.parallel.ici.update(data=1, fsdp=-1, sequence=8)
  config.parallel.rules = 'fsdp_sequence'
  if arg == 'tiny':  # same structure, 2 layers
    config.data.update(num_frames=17, height=64, width=64, batch_size=4)
    config.data.tokenizer.update(vocab_size=512, max_length=16)
    config.dit.update(depth=2, width=128, heads=4)
    config.text.update(width=64, depth=1, heads=2)
    config.parallel.ici.update(sequence=2)
  elif arg:
    raise ValueError(f'Unknown arg {arg!r} for video_3b_512.py: use tiny.')
  return config
