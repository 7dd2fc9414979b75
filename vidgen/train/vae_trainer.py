"""Training the patch VAE: reconstruction + KL (+ optional 3D patch-GAN), evaluated by PSNR/SSIM."""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from etils import epath

from vidgen import runs
from vidgen.data import pipeline, sources, video_io
from vidgen.eval import image_metrics
from vidgen.eval.contact_sheet import save_contact_sheet
from vidgen.models import vae as vae_lib
from vidgen.models.discriminator import PatchDiscriminator3D
from vidgen.train import optimizer as optimizer_lib
from vidgen.train.state import TrainState


def foreground_weights(video: jax.Array, weight: float, threshold: float = 0.1) -> jax.Array:
  """Per-pixel loss weights [B, T, H, W, 1]: 1 + `weight` where a pixel differs from its frame's
  median colour by more than `threshold` (in [-1, 1] units), i.e. on what is not background.

  Small moving objects cover a few percent of the pixels, so a plain mean lets a VAE score well
  by drawing the background alone; this makes their pixels count.
  """
  background = jnp.median(video, axis=(2, 3), keepdims=True)
  foreground = jnp.max(jnp.abs(video - background), axis=-1, keepdims=True) > threshold
  return 1.0 + weight * foreground.astype(video.dtype)


def kl_divergence(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mean, exp(logvar)) || N(0, 1)), averaged over latent values."""
  return 0.5 * jnp.mean(mean ** 2 + jnp.exp(logvar) - 1.0 - logvar)


class VAETrainer:
  """The VAE's part of the shared loop (see vidgen/train/loop.py)."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.vae_config = vae_lib.VAEConfig.from_config(config.vae)
    data = config.data
    vae_lib.check_video_shape(data.num_frames, data.height, data.width, self.vae_config.compression)
    self.model = vae_lib.VAE(self.vae_config)
    self._reconstruct = vae_lib.jitted_reconstruct(self.model)
    self.optimizer = optimizer_lib.make_optimizer(config.optim, config.train.num_steps)
    loss = config.loss
    self.use_gan = loss.gan_weight > 0
    if self.use_gan:
      self.discriminator = PatchDiscriminator3D(tuple(loss.disc_channels))
      self.disc_optimizer = optax.adam(loss.disc_lr, b1=0.5, b2=0.9)

  def eval_data(self) -> str:
    return sources.describe_split(self.config.data, self.config.data.eval_split)

  def dataset(self) -> grain.IterDataset:
    return pipeline.make_dataset(self.config, self.config.data.split)

  def init_state(self, rng: jax.Array, batch: Mapping[str, Any]) -> TrainState:
    model_rng, sample_rng, disc_rng = jax.random.split(rng, 3)
    video = batch['video'][:1, :1]  # parameters do not depend on length; 1 frame inits fast
    params = runs.vae_params(self.model, model_rng, sample_rng, video)  # boxed: logical axes give shardings
    extra = None
    if self.use_gan:
      disc_params = self.discriminator.init(disc_rng, video)['params']
      extra = {'disc_params': disc_params, 'disc_opt_state': self.disc_optimizer.init(disc_params)}
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=self.optimizer.init(params),
                      ema_params=params, extra=extra)

  def _losses(self, params, video, rng, disc_params):
    """(reconstruction loss, generator GAN loss), aux."""
    loss_cfg = self.config.loss
    out = self.model.apply({'params': params}, video, rng)
    rec = out['reconstruction']
    l1 = jnp.mean(jnp.abs(rec - video))
    l2 = jnp.mean((rec - video) ** 2)
    kl = kl_divergence(out['mean'], out['logvar'])
    if loss_cfg.foreground_weight > 0:  # the loss weights objects up; l1/l2 report the plain means
      w = jax.lax.stop_gradient(foreground_weights(video, loss_cfg.foreground_weight))
      weighted = loss_cfg.l1 * jnp.mean(w * jnp.abs(rec - video)) + loss_cfg.l2 * jnp.mean(w * (rec - video) ** 2)
      rec_loss = weighted / jnp.mean(w) + loss_cfg.kl * kl  # a weighted mean: same scale as unweighted
    else:
      rec_loss = loss_cfg.l1 * l1 + loss_cfg.l2 * l2 + loss_cfg.kl * kl
    gen_loss = -jnp.mean(self.discriminator.apply({'params': disc_params}, rec)) if self.use_gan else 0.0
    return (rec_loss, gen_loss), {'l1': l1, 'l2': l2, 'kl': kl, 'reconstruction': rec}

  def train_step(self, state: TrainState, batch: Mapping[str, Any],
                 rng: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
    video = batch['video']
    disc_params = state.extra['disc_params'] if self.use_gan else None
    (rec_loss, gen_loss), vjp, aux = jax.vjp(
        lambda p: self._losses(p, video, rng, disc_params), state.params, has_aux=True)
    (rec_grads,) = vjp((jnp.ones(()), jnp.zeros(())))
    metrics = {'loss': rec_loss, 'l1': aux['l1'], 'l2': aux['l2'], 'kl': aux['kl'],
               'psnr': jnp.mean(image_metrics.psnr(aux['reconstruction'], video))}
    grads, extra = rec_grads, state.extra
    if self.use_gan:
      grads, extra, gan_metrics = self._gan_update(state, vjp, rec_grads, video, aux['reconstruction'])
      metrics.update(gan_metrics)
    updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = optimizer_lib.ema_update(state.ema_params, params, self.config.optim.ema_decay, state.step)
    metrics['grad_norm'] = optax.global_norm(grads)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema,
                         extra=extra), metrics

  def _gan_update(self, state, vjp, rec_grads, video, reconstruction):
    """Adaptive-weight generator gradient (VQGAN) and one hinge-loss discriminator step."""
    loss_cfg = self.config.loss
    (gen_grads,) = vjp((jnp.zeros(()), jnp.ones(())))
    last = lambda g: g['decoder']['conv_out']['conv']['kernel']
    weight = jnp.linalg.norm(last(rec_grads)) / (jnp.linalg.norm(last(gen_grads)) + 1e-4)
    weight = jnp.clip(weight, 0.0, 1e4) * loss_cfg.gan_weight * (state.step >= loss_cfg.gan_start)
    grads = jax.tree_util.tree_map(lambda r, g: r + weight * g, rec_grads, gen_grads)

    def disc_loss_fn(disc_params):
      real = self.discriminator.apply({'params': disc_params}, video)
      fake = self.discriminator.apply({'params': disc_params}, jax.lax.stop_gradient(reconstruction))
      return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))

    disc_loss, disc_grads = jax.value_and_grad(disc_loss_fn)(state.extra['disc_params'])
    on = state.step >= loss_cfg.gan_start
    disc_grads = jax.tree_util.tree_map(lambda g: g * on, disc_grads)
    updates, disc_opt_state = self.disc_optimizer.update(disc_grads, state.extra['disc_opt_state'])
    extra = {'disc_params': optax.apply_updates(state.extra['disc_params'], updates),
             'disc_opt_state': disc_opt_state}
    return grads, extra, {'disc_loss': disc_loss, 'gan_weight': weight}

  def evaluate(self, state: TrainState, step: int, workdir: str) -> dict[str, float]:
    """PSNR/SSIM of EMA reconstructions on the eval split, for videos and for single images."""
    return evaluate_reconstruction(self._reconstruct, state.ema_params, self.config, workdir, step)


def evaluate_reconstruction(reconstruct: Callable[[Any, jax.Array], jax.Array], params: Any,
                            config: ml_collections.ConfigDict, workdir: str | None, step: int) -> dict[str, float]:
  """Reconstructs `eval.num_videos` eval videos and as many 1-frame images; writes a side-by-side PNG + mp4.

  `reconstruct(params, video)` is the VAE's jitted encode-mean-decode, built once per trainer.
  """
  results = {}
  video_frames = config.eval.num_frames or config.data.num_frames
  for kind, frames in (('video', video_frames), ('image', 1)):
    psnrs, ssims, shown = [], [], None
    for batch in pipeline.make_eval_dataset(config, num_frames=frames, batch_size=config.eval.batch_size):
      rec = reconstruct(params, batch['video'])
      psnrs.append(np.asarray(image_metrics.psnr(rec, batch['video'])))
      ssims.append(np.asarray(image_metrics.ssim(rec, batch['video'])))
      shown = shown or (batch['video'], np.asarray(rec))
      if sum(map(len, psnrs)) >= config.eval.num_videos:
        break
    results[f'{kind}_psnr'] = float(np.concatenate(psnrs)[:config.eval.num_videos].mean())
    results[f'{kind}_ssim'] = float(np.concatenate(ssims)[:config.eval.num_videos].mean())
    if workdir is not None and kind == 'video':
      _write_side_by_side(workdir, step, *shown, fps=config.data.fps)
  return results


def _write_side_by_side(workdir: str, step: int, real: np.ndarray, rec: np.ndarray, *, fps: float,
                        count: int = 4) -> None:
  out = epath.Path(workdir) / 'eval'
  out.mkdir(parents=True, exist_ok=True)
  pairs = [np.concatenate([video_io.to_uint8(r), video_io.to_uint8(x)], axis=2) for r, x in zip(real[:count], rec[:count])]
  save_contact_sheet(os.fspath(out / f'reconstruction_{step:07d}.png'), pairs,
                     ['input | reconstruction'] * len(pairs), frames_per_row=6, frame_size=96, caption_width=80)
  video_io.write_video(os.fspath(out / f'reconstruction_{step:07d}.mp4'), np.concatenate(pairs, axis=1),
                       fps=fps)
