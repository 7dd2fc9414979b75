"""Where a DiT run loses the prompt's motion direction: denoising real eval videos from each noise level.

  python experiments/ablations/direction_probe.py --workdir runs/quickstart/dit

Real world eval videos are encoded by the run's VAE, noised to level t with one fixed draw of
the run's noise prior, and then

* predicted clean in one step (x0 = x_t − t·v) with the true caption, and with the caption's
  direction phrase replaced by the opposite direction's ("to the right" → "to the left"): the
  probe's direction accuracy against the truth and against the swapped caption says how much
  motion the DiT reads from the noisy input and how much from the words;
* sampled from t down to 0 with the run's sampler settings (Euler steps of its shifted schedule
  from t, classifier-free guidance), as SDEdit does: the level from which sampling still keeps
  the video's motion.

With --first_frame the real first latent frame is given clean throughout (image-to-video, for a
run trained with `masking.image`): the object's start is then known, and only the caption
says where it goes.

Prints one line per level. Results for the quickstart DiT: experiments/ablations/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from vidgen.data import video_io  # noqa: E402
from vidgen.world import probe, scenes as world  # noqa: E402
from vidgen.diffusion import guidance  # noqa: E402
from vidgen.world import metrics as world_metrics  # noqa: E402
from vidgen.world.features import as_float_video  # noqa: E402
from vidgen.generation import VideoGenerator  # noqa: E402
from vidgen.models import vae as vae_lib  # noqa: E402
from vidgen.models.text_to_video import TextToVideo  # noqa: E402

OPPOSITE = {'north': 'south', 'northeast': 'southwest', 'east': 'west', 'southeast': 'northwest'}
OPPOSITE.update({v: k for k, v in OPPOSITE.items()})
# Longest phrases first, so 'up and to the right' is not read as 'up'.
PHRASES = sorted(((p, d) for d, ps in world.DIRECTION_PHRASES.items() for p in ps), key=lambda pd: -len(pd[0]))


def swap_direction(caption: str) -> tuple[str, str | None]:
  """The caption with its direction phrase turned around, and the new direction (None: no motion named)."""
  for phrase, direction in PHRASES:
    m = re.search(r'\b' + re.escape(phrase) + r'\b', caption)
    if m:
      new = OPPOSITE[direction]
      return caption[:m.start()] + world.DIRECTION_PHRASES[new][0] + caption[m.end():], new
  return caption, None


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', default='runs/quickstart/dit', help='A trained DiT run.')
  parser.add_argument('--num_videos', type=int, default=64)
  parser.add_argument('--levels', default='0.6,0.8,0.9', help='Noise levels t of the one-step predictions.')
  parser.add_argument('--start_levels', default='1.0,0.9,0.8', help='Levels t the SDEdit sampling starts from.')
  parser.add_argument('--seed', type=int, default=1)
  parser.add_argument('--first_frame', action='store_true', help='Give the real first latent frame clean.')
  args = parser.parse_args()

  g = VideoGenerator.from_workdir(args.workdir)
  config = g.config
  records = world_metrics.prompt_records(config.data, 'eval', config.seed, args.num_videos)
  real = np.stack([r['frames'] for r in records])
  encode = jax.jit(lambda p, v: g.vae.apply({'params': p}, v, method=vae_lib.VAE.encode))
  z = (np.asarray(encode(g.vae_params, as_float_video(real))[0]) - g.latent_shift) * g.latent_scale
  noise = np.asarray(g.objective.noise(jax.random.key(args.seed), z.shape))
  b = len(records)
  truth = [world.DIRECTION_NAMES[int(r['object_direction'][0])] for r in records]
  captions = [str(r['caption']) for r in records]
  swapped = [swap_direction(c) for c in captions]
  moving = [i for i, (_, d) in enumerate(swapped) if d is not None]
  cond_mask = jnp.zeros(z.shape[:2], bool).at[:, 0].set(args.first_frame)
  cond_latents = jnp.asarray(z)
  keep_first = lambda x: jnp.where(cond_mask[:, :, None, None, None], cond_latents, x)

  def directions(latents):
    videos = video_io.to_uint8(g.decode(np.asarray(latents) / g.latent_scale + g.latent_shift))
    found = []
    for i in moving:
      objects = probe.probe_video(videos[i]).objects
      found.append(objects[0].direction if objects else None)
    return found

  denoise = jax.jit(lambda x, t, text, mask: g.model.apply({'params': g.params}, x, t, text, mask, cond_mask,
                                                          cond_latents, method=TextToVideo.denoise))
  given = ', first latent frame given clean' if args.first_frame else ''
  print(f'{args.workdir}: {len(moving)} of {b} eval videos move (direction accuracy is over those){given}')
  texts = {'true caption': g.encode_prompts(captions), 'opposite caption': g.encode_prompts([c for c, _ in swapped])}
  for t in [float(s) for s in args.levels.split(',')]:
    x_t = (1 - t) * z + t * noise
    row = []
    for name, (text, mask) in texts.items():
      x0 = keep_first(x_t - t * denoise(jnp.asarray(x_t), jnp.full((b,), t), text, mask))
      found = directions(x0)
      true_acc = np.mean([f == truth[i] for f, i in zip(found, moving)])
      swap_acc = np.mean([f == swapped[i][1] for f, i in zip(found, moving)])
      row.append(f'{name}: true direction {true_acc:.3f}, swapped direction {swap_acc:.3f}')
    print(f'one step from t={t}: ' + ' | '.join(row), flush=True)

  text, mask = texts['true caption']
  null_text, null_mask = g.model.apply({'params': g.params}, 1, text.shape[1], method=TextToVideo.null_text)
  apply = lambda p, x, t, txt, m, cm, cl: g.model.apply({'params': p}, x, t, txt, m, cm, cl, method=TextToVideo.denoise)
  steps, scale = config.sample.steps, config.sample.cfg_scale
  guided = jax.jit(guidance.cfg_denoise_fn(apply, g.params, text, mask, null_text, null_mask, scale,
                                           cond_mask=cond_mask, cond_latents=cond_latents))
  times = g.objective.schedule(steps, g.model.dit.num_tokens(*z.shape[1:4]))
  for t0 in [float(s) for s in args.start_levels.split(',')]:
    start = int(np.argmin(np.abs(times - t0)))
    x = keep_first(jnp.asarray((1 - times[start]) * z + times[start] * noise))
    for i in range(start, steps):
      x = keep_first(x + (times[i + 1] - times[i]) * guided(x, jnp.full((b,), times[i])))
    found = directions(x)
    acc = np.mean([f == truth[i] for f, i in zip(found, moving)])
    print(f'sampled from t={times[start]:.3f} ({steps - start} Euler steps, guidance {scale}): '
          f'direction {acc:.3f}', flush=True)


if __name__ == '__main__':
  main()
