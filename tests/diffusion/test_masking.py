"""Frame-mask strategies: drawn at their configured rates, each the shape it says, checked config."""

import jax
import numpy as np
import pytest

from vidgen import config_lib
from vidgen.diffusion import masking

MIX = masking.MaskingConfig(image=0.4, forward=0.2, backward=0.15, connect=0.1, random=0.05, min_frames=1,
                            max_frames=3)
N = 20_000


def _draw(config, frames=5, batch=N, seed=0):
  key = jax.random.key(seed)
  return np.asarray(masking.draw(key, config, batch, frames)), np.asarray(masking.strategy_ids(key, config, batch))


def test_strategies_are_drawn_at_their_configured_rates():
  _, ids = _draw(MIX)
  expected = list(MIX.probabilities.values()) + [1 - MIX.total]
  for i, p in enumerate(expected):
    rate = np.mean(ids == i)
    assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / N), (masking.STRATEGIES + ('none',))[i]


def test_each_strategy_gives_the_frames_it_says():
  masks, ids = _draw(MIX, frames=5)
  t = np.arange(5)
  by = lambda name: masks[ids == (masking.STRATEGIES + ('none',)).index(name)]
  assert (by('image') == (t == 0)).all()
  assert not by('none').any()
  for name in ('forward', 'backward'):
    m = by(name)
    k = m.sum(1)
    assert k.min() == 1 and k.max() == 3 and set(np.unique(k)) == {1, 2, 3}  # k uniform in [1, 3]
    prefix = t[None] < k[:, None]
    assert (m == (prefix if name == 'forward' else prefix[:, ::-1])).all()
  m = by('connect')
  assert m[:, 0].all() and m[:, -1].all() and (m.sum(1) <= 4).all() and (~m).any(axis=1).all()
  random = by('random')
  assert (~random).any(axis=1).all() and 0.3 < random.mean() < 0.6  # never every frame; about half given


def test_only_image_draws_what_first_frame_prob_did():
  """Configs that only set `image` train exactly as `first_frame_prob` did: the same masks."""
  key = jax.random.key(7)
  masks = np.asarray(masking.draw(key, masking.MaskingConfig(image=0.9), 64, 5))
  np.testing.assert_array_equal(masks[:, 0], np.asarray(jax.random.bernoulli(key, 0.9, (64,))))
  assert not masks[:, 1:].any()


def test_short_clips_and_images():
  assert not _draw(MIX, frames=1, batch=8)[0].any()  # an image gives nothing
  two, _ = _draw(MIX, frames=2, batch=2000)
  assert (~two).any(axis=1).all()  # at least one frame to generate, even when k is clipped
  assert not _draw(masking.MaskingConfig(), frames=5, batch=8)[0].any()


@pytest.mark.parametrize('overrides,message', [
    ({'image': -0.1}, r'masking.image=-0.1 is a probability'),
    ({'random': 1.5}, r'masking.random=1.5 is a probability'),
    ({'image': 0.6, 'connect': 0.6}, r'sum to 1.2 > 1'),
    ({'min_frames': 3, 'max_frames': 2}, r'1 <= min_frames <= max_frames'),
    ({'min_frames': 0}, r'1 <= min_frames'),
])
def test_bad_masking_configs_are_clear_errors(overrides, message):
  with pytest.raises(config_lib.ConfigError, match=message):
    masking.MaskingConfig(**overrides)


def test_from_config_rejects_unknown_keys():
  with pytest.raises(config_lib.ConfigError, match="Unknown config key masking.imgae.*Did you mean 'image'"):
    masking.MaskingConfig.from_config({'imgae': 0.5})
  assert masking.MaskingConfig.from_config({'image': 0.5}).image == 0.5
