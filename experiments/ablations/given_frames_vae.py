"""How exactly given pixel frames survive the VAE when placed on a canvas (vidgen/prompting.py).

  python experiments/ablations/given_frames_vae.py --dit runs/video_prompting/dit [--num_videos 64]

For each task's layout on the run's clip, encodes world eval videos two ways: whole (what the
DiT trained on) and as the canvas the task builds (given frames, the rest filled with the
nearest given frame). Prints how far the given latent frames move (mean |Δ| over the latents'
std) and the decoded given frames' mean absolute error against the originals (pixels in
[-1, 1]) both ways: the canvas's error within the VAE's own means the rule loses nothing.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from vidgen import config_lib, prompting
from vidgen.eval import prompting_eval
from vidgen.world import metrics as world_metrics
from vidgen.eval.prompting_report import given_frames
from vidgen.generation import Settings, VideoGenerator
from vidgen.models import vae as vae_lib


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--dit', required=True, help='A trained DiT run (its VAE and clip size are used).')
  parser.add_argument('--num_videos', type=int, default=64)
  args = parser.parse_args()
  generator = VideoGenerator.from_workdir(args.dit)
  config, s = config_lib.read_saved_config(args.dit), generator.resolve(Settings())
  model, params = generator.vae, generator.vae_params
  real = np.stack([r['frames'] for r in world_metrics.prompt_records(config.data, 'eval', config.seed,
                                                                     args.num_videos)])
  encode = jax.jit(lambda v: model.apply({'params': params}, v, method=vae_lib.VAE.encode)[0])
  decode = jax.jit(lambda z: model.apply({'params': params}, z, method=vae_lib.VAE.decode))
  as_float = lambda v: jnp.asarray(v, jnp.float32) / 127.5 - 1
  whole = np.asarray(encode(as_float(real)))
  own = np.asarray(decode(jnp.asarray(whole)))
  scale = float(whole.std())
  print('| task | given pixel frames | Δ given latents / latent std | decoded given frames: canvas | whole video |')
  print('|---|---|---|---|---|')
  for task in ('i2v', 'extend_forward', 'extend_backward', 'connect'):
    layout = prompting_eval.layout(task, s.num_frames, *given_frames(generator, task, s))
    given = np.repeat(layout.given[None], len(real), axis=0)
    canvas = np.asarray(encode(as_float(prompting.fill_unknown(real, given))))
    latent = prompting.latent_given(given, model.config.compression[0])[0]
    moved = np.abs(canvas[:, latent] - whole[:, latent]).mean() / scale
    err = lambda out: float(np.abs(out[:, layout.given] - np.asarray(as_float(real))[:, layout.given]).mean())
    print(f'| {task} | {np.flatnonzero(layout.given).tolist()} | {moved:.4f} | '
          f'{err(np.asarray(decode(jnp.asarray(canvas)))):.4f} | {err(own):.4f} |')


if __name__ == '__main__':
  main()
