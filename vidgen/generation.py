"""Videos from a trained run: text → video and video prompting, with guidance, decoded by the VAE.

`VideoGenerator.from_workdir(DIR)` loads what a DiT run left (config.json, tokenizer.model,
the EMA weights and latent normalisation of its latest checkpoint, and the VAE it names).
One model, one method per task, each returning uint8 videos [B, T, H, W, 3]:

  generate(prompts)                  text → video
  animate(images, prompts)           image → video (the image is frame 0)
  long(prompts, num_frames)          text → video of any length (a minute), in latent windows
  extend(videos, prompts, n, 'forward' | 'backward')   n new frames after / before, in windows
  connect(a, b, prompts)             from where A ends to where B starts
  loop(prompts)                      a clip whose last frame flows into its first
  edit(videos, prompts, strength)    SDEdit: noise to `strength`, denoise under the new prompt

Given frames become latent frames given clean as vidgen/prompting.py defines, and appear in the
output as the user's own pixels. The sampling entrypoint, the quickstart and the evaluation
all go through this class.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vidgen import prompting, runs
from vidgen.data import video_io
from vidgen.data.tokenizer import Tokenizer
from vidgen.diffusion import guidance, objectives, samplers
from vidgen.models import vae as vae_lib
from vidgen.models.text_to_video import TextToVideo


@dataclasses.dataclass(frozen=True)
class Settings:
  """How videos are sampled; None fields take the run's defaults (its data size, `config.sample`).

  `factorized` samples text-to-video in two passes of the same DiT, as Emu Video factorizes it:
  the whole clip from the text, of which only the first latent frame (the opening image) is
  kept, then the frames after it from new noise with that frame given clean (image-to-video).
  For runs trained with `masking.image` > 0: on the world, such a DiT moves a given object
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


TASKS = ('t2v', 'long', 'i2v', 'extend_forward', 'extend_backward', 'connect', 'loop', 'edit')


@dataclasses.dataclass(frozen=True)
class Task:
  """What to make for each prompt (`VideoGenerator.run`): text → video or a video-prompting task.

  Media carry a leading batch axis, of 1 (shared by every prompt) or of the number of prompts:
  images [B, H, W, 3] (i2v), videos [B, T, H, W, 3] (the clip to extend or edit; connect's A),
  videos_b (connect's B), all uint8 at the run's size.
  """
  name: str = 't2v'
  images: np.ndarray | None = None
  videos: np.ndarray | None = None
  videos_b: np.ndarray | None = None
  new_frames: int = 0  # extend_*: frames generated after / before the clip
  strength: float = 1.0  # edit: SDEdit's noise level
  num_frames: int = 0  # long: frames of the video (1 + k·ft)
  overlap: int = 1  # long: latent frames each window shares with the one before
  needs = {'i2v': ('images',), 'extend_forward': ('videos',), 'extend_backward': ('videos',),
           'connect': ('videos', 'videos_b'), 'edit': ('videos',)}

  def __post_init__(self):
    if self.name not in TASKS:
      raise ValueError(f'Unknown task {self.name!r}; use one of {TASKS}.')
    for field in self.needs.get(self.name, ()):
      if getattr(self, field) is None:
        raise ValueError(f'Task {self.name!r} needs {field}.')
    if self.name.startswith('extend') and self.new_frames < 1:
      raise ValueError(f'Task {self.name!r} needs new_frames >= 1; got {self.new_frames}.')
    if self.name == 'long' and self.num_frames < 1:
      raise ValueError(f'Task long needs num_frames >= 1; got {self.num_frames}.')
    if self.name == 'edit' and not 0.0 < self.strength <= 1.0:
      raise ValueError(f'strength must be in (0, 1] (0.6: keep the layout, take the new prompt); got {self.strength}.')

  def media_for(self, start: int, stop: int, num_prompts: int) -> 'Task':
    """This task for prompts start … stop − 1: per-prompt media sliced, shared media broadcast."""
    def part(media):
      if media is None:
        return None
      if len(media) not in (1, num_prompts):
        raise ValueError(f'Task {self.name!r} has {len(media)} media for {num_prompts} prompts: give 1 or one each.')
      return np.repeat(media, stop - start, axis=0) if len(media) == 1 else media[start:stop]
    return dataclasses.replace(self, images=part(self.images), videos=part(self.videos),
                               videos_b=part(self.videos_b))


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
    self._encode_video = jax.jit(lambda p, v: self.vae.apply({'params': p}, v, method=vae_lib.VAE.encode)[0])
    self._encode_text = jax.jit(lambda p, ids, mask: self.model.apply(
        {'params': p}, ids, mask, method=TextToVideo.encode_text))

  @classmethod
  def from_workdir(cls, workdir: str, *, mesh: jax.sharding.Mesh | None = None,
                   rules: Any = None) -> 'VideoGenerator':
    """The EMA weights of a DiT run's latest checkpoint, and the VAE it names.

    With a `mesh` and logical `rules` (vidgen/parallel) the weights are restored sharded onto
    the mesh, as training shards them, and sampling runs there.
    """
    model, params, extra, config, tokenizer = runs.load_dit(workdir, mesh=mesh, rules=rules)
    vae, vae_params = runs.frozen_vae(config, mesh=mesh, rules=rules)
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
        factorized=sample.factorized if settings.factorized is None else settings.factorized)
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
               progress: Callable[[int, int], Any] | None = None,
               canvas: prompting.Canvas | None = None) -> np.ndarray:
    """uint8 videos [len(prompts), T, H, W, 3], deterministic in `settings.seed`.

    With a `canvas` (vidgen/prompting.py) its given frames condition the video (image → video,
    extension, connecting) and appear in it as given; the canvas sets the length. Without one,
    text → video (two passes when `settings.factorized`).
    """
    prompts = self._check_prompts(prompts)
    if canvas is not None:
      if len(canvas.frames) != len(prompts):
        raise ValueError(f'{len(prompts)} prompts for {len(canvas.frames)} canvases: give one prompt per video.')
      settings = dataclasses.replace(settings, num_frames=canvas.num_frames, factorized=False)
    s = self.resolve(settings)
    shape = (len(prompts),) + self.vae.config.latent_shape(s.num_frames, s.height, s.width)
    key = jax.random.key(s.seed)
    if canvas is not None:
      prompting.check_fits(canvas.frames, s.height, s.width, 'The canvas')
      latent_given = prompting.latent_given(canvas.given, self.vae.config.compression[0])
      if (canvas.given.any(axis=1) & ~latent_given.any(axis=1)).any():
        raise ValueError('A canvas gives frames that fill no whole latent frame, so they would condition nothing: '
                         f'give frame 0, or all {self.vae.config.compression[0]} frames of a latent frame '
                         '(vidgen/prompting.py).')
      cond_mask = jnp.asarray(latent_given)
      cond_latents = self.encode(prompting.fill_unknown(canvas.frames, canvas.given))
      x = self._sample(prompts, s, shape, key, progress, cond_mask, cond_latents)
      video = video_io.to_uint8(self.decode(self.denormalize(x)))
      return np.where(canvas.given[:, :, None, None, None], canvas.frames, video)
    x = self._text_to_video(prompts, s, shape, key, progress)
    return video_io.to_uint8(self.decode(self.denormalize(x)))

  def _text_to_video(self, prompts: list[str], s: Settings, shape: tuple[int, ...], key: jax.Array,
                     progress: Callable[[int, int], Any] | None) -> jax.Array:
    """Normalised latents `shape` from the text alone (two passes when `s.factorized`)."""
    x = self._sample(prompts, s, shape, key, progress)
    if self.num_passes(s) == 2:
      # Keep the first latent frame (the opening image) and sample the motion after it from
      # new noise, as image-to-video: see `Settings`.
      first = jnp.zeros(shape[:2], bool).at[:, 0].set(True)
      x = self._sample(prompts, s, shape, jax.random.fold_in(key, 1), progress, first, x)
    return x

  def animate(self, images: np.ndarray, prompts: Sequence[str], settings: Settings = Settings(),
              progress: Callable[[int, int], Any] | None = None) -> np.ndarray:
    """Image → video: images [B, H, W, 3] uint8 as the first frame of videos [B, T, H, W, 3]."""
    s = self.resolve(settings)
    return self.generate(prompts, s, progress, prompting.image_canvas(np.asarray(images), s.num_frames))

  def extend(self, videos: np.ndarray, prompts: Sequence[str], new_frames: int, direction: str = 'forward',
             settings: Settings = Settings(), progress: Callable[[int, int], Any] | None = None,
             context_latents: int | None = None) -> np.ndarray:
    """Videos [B, T0, H, W, 3] with `new_frames` generated after (forward) or before (backward) them.

    In windows of `settings.num_frames` (the run's clip): each conditions on the
    `context_latents` latent frames (default: the most the run trained with, masking.max_frames)
    of the video so far nearest the new frames, so any length can be made. Returns the given
    frames as given plus the new ones, [B, T0 + new_frames, H, W, 3].
    """
    videos = np.asarray(videos)
    s = self.resolve(settings)
    if videos.ndim != 5:
      raise ValueError(f'videos must be uint8 [B, T, H, W, 3]; got shape {videos.shape}.')
    if new_frames < 1:
      raise ValueError(f'new_frames must be >= 1; got {new_frames}.')
    context = self.extension_context(videos.shape[1], direction, s, context_latents)
    out = videos
    for window in range(self.num_windows(new_frames, direction, videos.shape[1], s, context_latents)):
      ws = dataclasses.replace(s, seed=s.seed + window)
      if direction == 'forward':
        made = self.generate(prompts, ws, progress, prompting.forward_canvas(out, s.num_frames, context))
        out = np.concatenate([out, made[:, context:]], axis=1)
      else:
        made = self.generate(prompts, ws, progress, prompting.backward_canvas(out, s.num_frames, context))
        out = np.concatenate([made[:, :s.num_frames - context], out], axis=1)
    t0 = videos.shape[1]
    return out[:, :t0 + new_frames] if direction == 'forward' else out[:, out.shape[1] - t0 - new_frames:]

  def long(self, prompts: Sequence[str], num_frames: int, settings: Settings = Settings(),
           progress: Callable[[int, int], Any] | None = None, overlap: int = 1) -> np.ndarray:
    """Text → video of any length: uint8 [B, num_frames, H, W, 3], in windows of latent frames.

    The first window is text → video; each after it gives its first `overlap` latent frames
    clean, the last `overlap` latent frames the window before it made (exactly those latents,
    never decoded and re-encoded), and generates the rest. The whole latent video is decoded
    once by the chunked causal decoder, so decode memory does not grow with the length.
    num_frames must be 1 + k·ft (vidgen.eval.coherence.seconds_to_frames rounds up to one).
    """
    s = self.resolve(dataclasses.replace(settings, num_frames=None))  # windows are the run's clips
    ft = self.vae.config.compression[0]
    if num_frames < 1 or (num_frames - 1) % ft:
      raise ValueError(f'A long video needs 1 + k·{ft} frames; got {num_frames} (try {1 + ft * -(-(num_frames - 1) // ft)}).')
    total = self.vae.config.latent_shape(num_frames, s.height, s.width)[0]
    window = self.vae.config.latent_shape(s.num_frames, s.height, s.width)[0]
    if not 1 <= overlap < window:
      raise ValueError(f'overlap must be at least 1 and smaller than the window ({window} latent frames of the '
                       f'run\'s {s.num_frames}-frame clips); got {overlap}.')
    z = self.long_latents(prompts, total, s, progress, overlap)
    return video_io.to_uint8(self.decode(self.denormalize(z)))

  def long_latents(self, prompts: Sequence[str], total: int, settings: Settings,
                   progress: Callable[[int, int], Any] | None = None, overlap: int = 1) -> jax.Array:
    """The normalised latents [B, total, h, w, C] of `long`, window by window."""
    prompts = self._check_prompts(prompts)
    s = self.resolve(dataclasses.replace(settings, num_frames=None))
    shape = (len(prompts),) + self.vae.config.latent_shape(s.num_frames, s.height, s.width)
    window = shape[1]
    key = jax.random.key(s.seed)
    x = self._text_to_video(prompts, s, shape, key, progress)
    parts = [x]
    given = jnp.zeros(shape[:2], bool).at[:, :overlap].set(True)
    for k in range(self.num_long_windows(total, window, overlap) - 1):
      cond = jnp.zeros(shape, x.dtype).at[:, :overlap].set(x[:, window - overlap:])
      x = self._sample(prompts, s, shape, jax.random.fold_in(key, 2 + k), progress, given, cond)
      parts.append(x[:, overlap:])
    return jnp.concatenate(parts, axis=1)[:, :total]

  @staticmethod
  def num_long_windows(total: int, window: int, overlap: int) -> int:
    """Windows `long` samples for `total` latent frames (the first makes `window`, each next window − overlap)."""
    return 1 + max(0, -(-(total - window) // (window - overlap)))

  def extension_context(self, clip_frames: int, direction: str, settings: Settings,
                        context_latents: int | None = None) -> int:
    """Frames of the clip that condition each extension window (prompting.context_frames)."""
    s = self.resolve(settings)
    window_latents = self.vae.config.latent_shape(s.num_frames, s.height, s.width)[0]
    most = min(context_latents or self.config.masking.max_frames, window_latents - 1)
    return prompting.context_frames(clip_frames, self.vae.config.compression[0], most, direction)

  def num_windows(self, new_frames: int, direction: str, clip_frames: int, settings: Settings,
                  context_latents: int | None = None) -> int:
    """Sampler passes `extend` makes for `new_frames` (the first window's context sets the rest's)."""
    s = self.resolve(settings)
    per_window = s.num_frames - self.extension_context(clip_frames, direction, s, context_latents)
    return -(-new_frames // per_window)

  def connect(self, a: np.ndarray, b: np.ndarray, prompts: Sequence[str], settings: Settings = Settings(),
              progress: Callable[[int, int], Any] | None = None) -> np.ndarray:
    """A clip [B, T, H, W, 3] (T = settings.num_frames) from where videos A end to where videos B start.

    It opens with A's last frames and closes with B's first (`connect_context`), given; the
    frames between are generated.
    """
    s = self.resolve(settings)
    a, b = np.asarray(a), np.asarray(b)
    ca, cb = self.connect_context(s)
    for name, clip, need in (('A', a, ca), ('B', b, cb)):
      if clip.ndim != 5 or clip.shape[1] < need:
        raise ValueError(f'Clip {name} must be uint8 [B, T, H, W, 3] with at least {need} frames to connect '
                         f'into a {s.num_frames}-frame clip; got shape {clip.shape}.')
    return self.generate(prompts, s, progress, prompting.connect_canvas(a, b, s.num_frames, ca, cb))

  def connect_context(self, settings: Settings) -> tuple[int, int]:
    """(frames of A, frames of B) a connection gives: about a third of the latent frames at each end."""
    s = self.resolve(settings)
    ft = self.vae.config.compression[0]
    latents = self.vae.config.latent_shape(s.num_frames, s.height, s.width)[0]
    if latents < 3:
      raise ValueError(f'Connecting needs at least 3 latent frames (the end of A, new ones, the start of B); '
                       f'{s.num_frames} frames give {latents}: use at least {1 + 2 * ft} frames.')
    limit = self.config.masking.max_frames
    a = max(1, min(limit, (latents - 1) // 2))
    b = max(1, min(limit, a, latents - 2 - a))
    return 1 + (a - 1) * ft, b * ft

  def loop(self, prompts: Sequence[str], settings: Settings = Settings(),
           progress: Callable[[int, int], Any] | None = None) -> np.ndarray:
    """Seamless loops: a text → video clip V, then a connection from V's end back to its start.

    Returns V followed by the connection's new frames, so the last frame flows into the first
    as A's end flows into B's start: [B, T + new, H, W, 3].
    """
    s = self.resolve(settings)
    clip = self.generate(prompts, s, progress)
    bridge = self.connect(clip, clip, prompts, dataclasses.replace(s, seed=s.seed + 1), progress)
    ca, cb = self.connect_context(s)
    return np.concatenate([clip, bridge[:, ca:s.num_frames - cb]], axis=1)

  def edit(self, videos: np.ndarray, prompts: Sequence[str], strength: float, settings: Settings = Settings(),
           progress: Callable[[int, int], Any] | None = None) -> np.ndarray:
    """SDEdit: videos [B, T, H, W, 3] noised to `strength` in (0, 1] and denoised under new prompts.

    Low strength keeps the source (its layout and motion), high strength follows the prompt;
    1 ignores the source. T must be 1 + k·ft.
    """
    prompts = self._check_prompts(prompts)
    if not 0.0 < strength <= 1.0:
      raise ValueError(f'strength must be in (0, 1] (0.6: keep the layout, take the new prompt); got {strength}.')
    videos = np.asarray(videos)
    if videos.ndim != 5 or len(videos) != len(prompts):
      raise ValueError(f'edit takes videos [B, T, H, W, 3] and B prompts; got {videos.shape} and {len(prompts)}.')
    s = self.resolve(dataclasses.replace(settings, num_frames=videos.shape[1]))
    prompting.check_fits(videos, s.height, s.width, 'The video to edit')
    shape = (len(prompts),) + self.vae.config.latent_shape(s.num_frames, s.height, s.width)
    init = self.encode(videos)
    x = self._sample(prompts, s, shape, jax.random.key(s.seed), progress, strength=strength, init=init)
    return video_io.to_uint8(self.decode(self.denormalize(x)))

  def run(self, task: Task, prompts: Sequence[str], settings: Settings = Settings(),
          progress: Callable[[int, int], Any] | None = None) -> np.ndarray:
    """The videos of `task` for `prompts` (media already one per prompt or shared)."""
    task = task.media_for(0, len(prompts), len(prompts))
    if task.name == 't2v':
      return self.generate(prompts, settings, progress)
    if task.name == 'long':
      return self.long(prompts, task.num_frames, settings, progress, task.overlap)
    if task.name == 'i2v':
      return self.animate(task.images, prompts, settings, progress)
    if task.name.startswith('extend'):
      return self.extend(task.videos, prompts, task.new_frames, task.name.split('_')[1], settings, progress)
    if task.name == 'connect':
      return self.connect(task.videos, task.videos_b, prompts, settings, progress)
    if task.name == 'loop':
      return self.loop(prompts, settings, progress)
    return self.edit(task.videos, prompts, task.strength, settings, progress)

  def passes(self, task: Task, settings: Settings = Settings()) -> int:
    """Sampler passes `run(task, ...)` makes per batch (for progress bars: × steps)."""
    if task.name == 't2v':
      return self.num_passes(settings)
    if task.name == 'long':
      s = self.resolve(dataclasses.replace(settings, num_frames=None))
      window = self.vae.config.latent_shape(s.num_frames, s.height, s.width)[0]
      total = self.vae.config.latent_shape(task.num_frames, s.height, s.width)[0]
      return self.num_passes(s) + self.num_long_windows(total, window, task.overlap) - 1
    if task.name.startswith('extend'):
      return self.num_windows(task.new_frames, task.name.split('_')[1], task.videos.shape[1], settings)
    if task.name == 'loop':
      return self.num_passes(settings) + 1
    return 1

  def _check_prompts(self, prompts: Sequence[str]) -> list[str]:
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
      raise ValueError('Every prompt must be non-empty text, e.g. --prompt "a red circle moves to the right".')
    return prompts

  def _sample(self, prompts: list[str], s: Settings, shape: tuple[int, ...], rng: jax.Array,
              progress: Callable[[int, int], Any] | None, cond_mask: jax.Array | None = None,
              cond_latents: jax.Array | None = None, strength: float = 1.0,
              init: jax.Array | None = None) -> jax.Array:
    """Normalised latents `shape` from the sampler, with guidance, given frames and SDEdit's start."""
    text, text_mask = self.encode_prompts(prompts)
    length = text_mask.shape[1]
    null_text, null_mask = self.model.apply({'params': self.params}, 1, length, method=TextToVideo.null_text)
    negative = self.encode_prompts([s.negative_prompt]) if s.negative_prompt else None
    apply = lambda p, x, t, txt, m, cm, cl: self.model.apply({'params': p}, x, t, txt, m, cm, cl,
                                                             method=TextToVideo.denoise)
    denoise = guidance.cfg_denoise_fn(apply, self.params, text, text_mask, null_text, null_mask, s.cfg_scale,
                                      negative=negative, cond_mask=cond_mask, cond_latents=cond_latents)
    return samplers.sample(denoise, self.objective, shape, rng, sampler=s.sampler, steps=s.steps,
                           num_tokens=self.model.dit.num_tokens(*shape[1:4]), cond_mask=cond_mask,
                           cond_latents=cond_latents, progress=progress or (lambda i, n: None),
                           strength=strength, init_latents=init)

  def encode(self, videos: np.ndarray) -> jax.Array:
    """uint8 videos [B, T, H, W, 3] → normalised latent means (the DiT's space), [B, T', H', W', C]."""
    x = jnp.asarray(np.asarray(videos, np.float32) / 127.5 - 1.0)
    if x.shape[1] > 1 + 8 * self.vae.config.compression[0]:
      mean = jnp.asarray(vae_lib.ChunkedCodec(self.vae, self.vae_params).encode(x)[0])
    else:
      mean = self._encode_video(self.vae_params, x)
    return (mean - self.latent_shift) * self.latent_scale

  def denormalize(self, x: jax.Array) -> np.ndarray:
    """The DiT's normalised latents → the VAE's latents."""
    return np.asarray(x) / self.latent_scale + self.latent_shift

  def decode(self, z: np.ndarray) -> np.ndarray:
    """Latents → float video; long videos go through the chunked causal decoder."""
    if z.shape[1] > 8:
      return vae_lib.ChunkedCodec(self.vae, self.vae_params).decode(jnp.asarray(z))
    return np.asarray(self._decode(self.vae_params, jnp.asarray(z)))
