"""Text → video with a trained run: tokenize, sample latents with guidance, decode with the VAE.

`VideoGenerator.from_workdir(DIR)` loads what a DiT run left (config.json, tokenizer.model,
the EMA weights and latent normalisation of its latest checkpoint, and the VAE it names);
`generate(prompts, ...)` returns uint8 videos [B, T, H, W, 3]. The sampling entrypoint,
the quickstart and the evaluation all go through it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vidgen.data import video_io
from vidgen.data.tokenizer import Tokenizer
from vidgen.diffusion import guidance, objectives, samplers
from vidgen.models import vae as vae_lib
from vidgen.models.text_to_video import TextToVideo
from vidgen.train import dit_trainer


@dataclasses.dataclass(frozen=True)
class Settings:
  """How videos are sampled; None fields take the run's defaults (its data size, `config.sample`).

  `factorized` samples text-to-video in two passes of the same DiT, as Emu Video factorizes it:
  the whole clip from the text, of which only the first latent frame (the opening image) is
  kept, then the frames after it from new noise with that frame given clean (image-to-video).
  For runs trained with `first_frame_prob` > 0: on the world, such a DiT moves a given object
  the way the caption says, where from noise alone it does not (experiments/ablations/README.md).
  """
  num_frames: int | None = None
  height: int | None = None
  width: int | None = None
  steps: int | None = None
  cfg_scale: float | None = None
  sampler: str | None = None
  seed: int = 0
  negative_prompt: str | None = None
  factorized: bool | None = None


class VideoGenerator:
  """A trained text-to-video model, ready to sample."""

  def __init__(self, model: TextToVideo, params: Any, extra: Mapping[str, Any], config: ml_collections.ConfigDict,
               tokenizer: Tokenizer, vae: vae_lib.VAE, vae_params: Any, workdir: str | None = None):
    self.workdir = workdir
    self.model, self.config, self.tokenizer = model, config, tokenizer
    self.vae, self.vae_params = vae, vae_params
    self.set_weights(params, extra)
    self.objective = objectives.make_objective(self.config.diffusion)
    self._decode = jax.jit(lambda p, z: self.vae.apply({'params': p}, z, method=vae_lib.VAE.decode))
    self._encode_text = jax.jit(lambda p, ids, mask: self.model.apply(
        {'params': p}, ids, mask, method=TextToVideo.encode_text))

  @classmethod
  def from_workdir(cls, workdir: str) -> 'VideoGenerator':
    """The EMA weights of a DiT run's latest checkpoint, and the VAE it names."""
    model, params, extra, config, tokenizer = dit_trainer.load_dit(workdir)
    vae, vae_params = dit_trainer.vae_from_config(config)
    return cls(model, params, extra, config, tokenizer, vae, vae_params, workdir)

  def set_weights(self, params: Any, extra: Mapping[str, Any]) -> None:
    """Samples with these DiT weights and latent normalisation from now on (training evaluates this way)."""
    self.params = params
    self.latent_shift = np.asarray(extra['latent_shift'])
    self.latent_scale = np.asarray(extra['latent_scale'])

  def resolve(self, settings: Settings) -> Settings:
    """Fills defaults from the run and checks that the VAE and DiT can make the asked size."""
    data, sample = self.config.data, self.config.sample
    s = dataclasses.replace(
        settings,
        num_frames=settings.num_frames or data.num_frames, height=settings.height or data.height,
        width=settings.width or data.width, steps=settings.steps or sample.steps,
        cfg_scale=sample.cfg_scale if settings.cfg_scale is None else settings.cfg_scale,
        sampler=settings.sampler or sample.sampler,
        factorized=sample.get('factorized', False) if settings.factorized is None else settings.factorized)
    vae_lib.check_video_shape(s.num_frames, s.height, s.width, self.vae.config.compression)
    latent = self.vae.config.latent_shape(s.num_frames, s.height, s.width)
    try:
      self.model.dit.check_latent_shape(*latent[:3])
    except ValueError as e:
      raise ValueError(f'{s.num_frames}×{s.height}×{s.width} video gives a {latent[:3]} latent grid the DiT '
                       f'cannot patch: {e}') from None
    if s.steps < 1:
      raise ValueError(f'steps must be >= 1, got {s.steps}.')
    return s

  def num_passes(self, settings: Settings) -> int:
    """Sampler passes per video: 2 when factorized (the opening frame, then the motion), else 1."""
    s = self.resolve(settings)
    return 2 if s.factorized and self.vae.config.latent_shape(s.num_frames, s.height, s.width)[0] > 1 else 1

  def encode_prompts(self, prompts: Sequence[str]) -> tuple[jax.Array, jax.Array]:
    """The text encoder's tokens [B, L, D] and mask [B, L] of prompts, tokenized as in training."""
    tok = self.config.data.tokenizer
    ids, mask = self.tokenizer.encode(list(prompts), tok.max_length, tok.overflow)
    return self._encode_text(self.params, ids, mask)

  def generate(self, prompts: Sequence[str], settings: Settings = Settings(),
               progress: Callable[[int, int], Any] | None = None) -> np.ndarray:
    """uint8 videos [len(prompts), T, H, W, 3], deterministic in `settings.seed`."""
    prompts = list(prompts)
    if not prompts or any(not p.strip() for p in prompts):
      raise ValueError('Every prompt must be non-empty text, e.g. --prompt "a red circle moves to the right".')
    s = self.resolve(settings)
    text, text_mask = self.encode_prompts(prompts)
    b, length = text_mask.shape
    null_text, null_mask = self.model.apply({'params': self.params}, 1, length, method=TextToVideo.null_text)
    negative = None
    if s.negative_prompt:
      negative = self.encode_prompts([s.negative_prompt])
    apply = lambda p, x, t, txt, m, cm, cl: self.model.apply({'params': p}, x, t, txt, m, cm, cl,
                                                             method=TextToVideo.denoise)
    latent_shape = self.vae.config.latent_shape(s.num_frames, s.height, s.width)
    num_tokens = self.model.dit.num_tokens(*latent_shape[:3])
    progress = progress or (lambda i, n: None)

    def sample(rng, cond_mask=None, cond_latents=None):
      denoise = guidance.cfg_denoise_fn(apply, self.params, text, text_mask, null_text, null_mask, s.cfg_scale,
                                        negative=negative, cond_mask=cond_mask, cond_latents=cond_latents)
      return samplers.sample(denoise, self.objective, (b,) + latent_shape, rng, sampler=s.sampler, steps=s.steps,
                             num_tokens=num_tokens, cond_mask=cond_mask, cond_latents=cond_latents,
                             progress=progress)

    x = sample(jax.random.key(s.seed))
    if self.num_passes(s) == 2:
      # Keep the first latent frame (the opening image) and sample the motion after it from
      # new noise, as image-to-video: see `Settings`.
      first = jnp.zeros((b, latent_shape[0]), bool).at[:, 0].set(True)
      x = sample(jax.random.fold_in(jax.random.key(s.seed), 1), first, x)
    z = np.asarray(x) / self.latent_scale + self.latent_shift
    return video_io.to_uint8(self.decode(z))

  def decode(self, z: np.ndarray) -> np.ndarray:
    """Latents → float video; long videos go through the chunked causal decoder."""
    if z.shape[1] > 8:
      return vae_lib.ChunkedCodec(self.vae, self.vae_params).decode(jnp.asarray(z))
    return np.asarray(self._decode(self.vae_params, jnp.asarray(z)))
