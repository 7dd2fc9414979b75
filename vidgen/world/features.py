"""The world feature network: the video embedding in which vidgen computes its Fréchet video distance.

Why this feature space. Standard FVD embeds videos with I3D trained on Kinetics: a network
trained to tell apart what varies in its videos. I3D cannot be downloaded here, and its
Kinetics features know nothing of coloured shapes on dark backgrounds. The world's analogue
is a small 3D-conv network trained on the world's own ground truth: which colours are
present, each object's shape, size, direction and speed, the background, gravity, occluder
and camera pan. Its pooled features therefore move when what a viewer of world videos would
notice changes (a missing object, a wrong colour, the wrong motion), and hardly at all with
pixel noise that changes none of it. The alternatives are worse for this job: the run's own
VAE encoder changes from run to run (so distances of two runs are not comparable) and is
blind to whatever that VAE fails to encode, and a random network measures pixel statistics.

Deterministic: the net is trained from a fixed seed on deterministic world videos
(`python -m vidgen.world.train_features`), saved with the SHA-256 of its weights, and the
report names that hash; features are computed per video (no batch statistics),
so a video's features do not depend on what it is batched with.

Shapes: videos uint8 [N, T, H, W, 3] (or floats in [-1, 1]); any T, and H, W multiples of 8
(global pooling);
features float32 [N, 2 * widths[-1]] (mean and max pooled).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Mapping, Sequence

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import serialization

from vidgen import paths
from vidgen.train import checkpoint as checkpoint_lib
from vidgen.world import scenes as world

INFO_FILE = 'features.json'
PAN_CLASSES = ((0, 0),) + tuple(world.PAN_PHRASES)  # no pan, then the 8 pan directions
# Heads of the classifier: name -> number of classes. Per-colour heads are read only where
# that colour is present in the video.
GLOBAL_HEADS = {'background': len(world.BACKGROUND_NAMES), 'gravity': 2, 'occluder': 2, 'pan': len(PAN_CLASSES)}
COLOR_HEADS = {'present': 2, 'shape': len(world.SHAPES), 'size': len(world.SIZE_NAMES),
               'direction': len(world.DIRECTION_NAMES), 'speed': 1 + len(world.SPEED_NAMES)}



@dataclasses.dataclass(frozen=True)
class FeatureNetConfig:
  """The feature net's `net` block."""
  widths: tuple[int, ...] = (64, 128)  # patch MLP width, then merged-patch width

  def __post_init__(self):
    if len(self.widths) != 2 or min(self.widths) < 1:
      raise ValueError(f'net.widths must be two positive widths, got {self.widths}.')


@dataclasses.dataclass(frozen=True)
class FeatureEvalConfig:
  """The feature net's `eval` block."""
  num_videos: int = 256  # eval-split videos its held-out accuracy is read on

  def __post_init__(self):
    if self.num_videos < 1:
      raise ValueError(f'eval.num_videos must be >= 1, got {self.num_videos}.')

class WorldFeatureNet(nn.Module):
  """Spacetime patches → MLP → merged patches → mean- and max-pooled features [B, 2 * widths[-1]].

  Each frame is paired with its change from the previous frame, so motion is in the input;
  patches are cut by reshapes and mixed by dense layers (matmuls run fast on a CPU, where
  3D convolutions and their gradients are an order of magnitude slower).
  """
  widths: tuple[int, ...] = (64, 128)
  patch: int = 4

  @nn.compact
  def __call__(self, video: jax.Array) -> jax.Array:
    if video.shape[1] > 1:
      x = jnp.concatenate([video[:, 1:], video[:, 1:] - video[:, :-1]], -1)
    else:  # an image: no change
      x = jnp.concatenate([video, jnp.zeros_like(video)], -1)
    p = self.patch
    _, _, h, w, _ = x.shape
    if h % (2 * p) or w % (2 * p):
      raise ValueError(f'The world feature net needs height and width divisible by {2 * p}, got {h}x{w}.')
    x = einops.rearrange(x, 'b t (h p) (w q) c -> b t h w (p q c)', p=p, q=p)
    x = nn.gelu(nn.Dense(self.widths[0], name='patch')(x))
    x = nn.gelu(nn.Dense(self.widths[0], name='mix')(x))
    if x.shape[1] % 2:  # pairs of steps: repeat the last one
      x = jnp.concatenate([x, x[:, -1:]], 1)
    x = einops.rearrange(x, 'b (t r) (h p) (w q) c -> b t h w (r p q c)', r=2, p=2, q=2)
    x = nn.gelu(nn.Dense(self.widths[1], name='merge')(x))
    x = nn.LayerNorm(name='norm')(x)
    return jnp.concatenate([x.mean((1, 2, 3)), x.max((1, 2, 3))], -1)


class WorldClassifier(nn.Module):
  """The feature net with the world heads it is trained through."""
  widths: tuple[int, ...] = (64, 128)

  def setup(self):
    self.features = WorldFeatureNet(self.widths)
    self.global_heads = {k: nn.Dense(n, name=f'head_{k}') for k, n in GLOBAL_HEADS.items()}
    self.color_heads = {k: nn.Dense(len(world.COLOR_NAMES) * n, name=f'head_color_{k}')
                        for k, n in COLOR_HEADS.items()}

  def __call__(self, video: jax.Array) -> dict[str, jax.Array]:
    f = self.features(video)
    out = {k: head(f) for k, head in self.global_heads.items()}
    for k, head in self.color_heads.items():
      out[f'color_{k}'] = head(f).reshape(f.shape[0], len(world.COLOR_NAMES), COLOR_HEADS[k])
    return out

  def embed(self, video: jax.Array) -> jax.Array:
    return self.features(video)


def record_labels(record: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """Class labels of a world record for every head; per-colour labels are -1 where the colour is absent.

  The pan label is its direction (the signs of its px/frame shift).
  """
  n = len(world.COLOR_NAMES)
  labels = {f'color_{k}': np.full(n, -1, np.int32) for k in COLOR_HEADS}
  labels['color_present'][:] = 0
  for k in range(int(record['num_objects'])):
    c = int(record['object_color'][k])
    labels['color_present'][c] = 1
    labels['color_shape'][c] = int(record['object_shape'][k])
    labels['color_size'][c] = int(record['object_size'][k])
    labels['color_direction'][c] = int(record['object_direction'][k])
    labels['color_speed'][c] = int(record['object_speed'][k]) + 1  # -1 (still) → 0
  labels['background'] = np.int32(record['background'])
  labels['gravity'] = np.int32(bool(record['gravity']))
  labels['occluder'] = np.int32(bool(record['occluder']))
  labels['pan'] = np.int32(PAN_CLASSES.index(tuple(int(np.sign(v)) for v in record['pan'])))
  return labels


def as_float_video(videos: Any) -> np.ndarray:
  """uint8 [..., 3] → float32 in [-1, 1]; floats pass through."""
  x = np.asarray(videos)
  if x.dtype == np.uint8:
    return x.astype(np.float32) / 127.5 - 1.0
  return x.astype(np.float32)


def params_sha256(params: Any) -> str:
  """The SHA-256 of the weights' bytes (flax msgpack): which net made a set of features."""
  return hashlib.sha256(serialization.to_bytes(jax.device_get(params))).hexdigest()


class FeatureExtractor:
  """A trained world feature net, loaded from the run folder `train_features` trained in."""

  def __init__(self, directory: str):
    info_path = os.path.join(directory, INFO_FILE)
    if not paths.exists(info_path):
      raise FileNotFoundError(
          f'{directory} holds no world feature net ({INFO_FILE} is missing). Train one with '
          f'`python -m vidgen.world.train_features --out {directory}`.')
    self.directory = directory
    self.info = json.load(paths.open_file(info_path))
    if not paths.exists(os.path.join(directory, 'checkpoints')):
      raise FileNotFoundError(f'{directory} has {INFO_FILE} but no checkpoints/: it was written by an older vidgen '
                              '(params.msgpack); train the feature net again into a new folder.')
    config = ml_collections.ConfigDict(self.info['config'])
    self.model = WorldClassifier(tuple(config.net.widths))
    data = config.data
    shapes = jax.eval_shape(lambda: self.model.init(jax.random.key(0), jnp.zeros((1, data.num_frames, data.height,
                                                                                   data.width, 3)))['params'])
    one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=one), shapes)
    ckpt = checkpoint_lib.Checkpointer(os.path.join(directory, 'checkpoints'), create=False)
    try:
      self.params = ckpt.restore_subset({'params': abstract}, step=self.info['steps'])['params']
    finally:
      ckpt.close()
    if params_sha256(self.params) != self.info['params_sha256']:
      raise ValueError(f'The weights in {directory}/checkpoints do not match the hash in {INFO_FILE}: they are from '
                       'different trainings or corrupt; train the feature net again.')
    self._embed = jax.jit(lambda p, v: self.model.apply({'params': p}, v, method=WorldClassifier.embed))
    self._classify = jax.jit(lambda p, v: self.model.apply({'params': p}, v))

  @property
  def sha256(self) -> str:
    return self.info['params_sha256']

  @property
  def description(self) -> str:
    """One line for reports: what the features are and which weights made them."""
    return (f'world feature net {self.sha256[:12]} ({self.info["feature_dim"]}-d, trained {self.info["steps"]} steps; '
            f'held-out accuracy {self.info["accuracy"]["mean"]:.3f})')

  def embed(self, videos: Sequence[np.ndarray] | np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Features float32 [N, D] of videos [N, T, H, W, 3] (uint8, or floats in [-1, 1])."""
    videos = list(videos) if not isinstance(videos, np.ndarray) else videos
    out = [np.asarray(self._embed(self.params, as_float_video(np.stack(videos[i:i + batch_size]))))
           for i in range(0, len(videos), batch_size)]
    return np.concatenate(out).astype(np.float32)

  def classify(self, videos: np.ndarray) -> dict[str, np.ndarray]:
    """The heads' logits for videos [N, T, H, W, 3]."""
    return {k: np.asarray(v) for k, v in self._classify(self.params, as_float_video(videos)).items()}


__all__ = ['WorldFeatureNet', 'WorldClassifier', 'FeatureExtractor', 'record_labels', 'as_float_video',
           'GLOBAL_HEADS', 'COLOR_HEADS', 'params_sha256']
