"""The world feature net: trains deterministically, loads with its hash checked, embeds per video."""

import json
import os
import shutil

import numpy as np
import pytest

from vidgen import config_lib
from vidgen.train import loop, metrics
from vidgen.world import scenes as world
from vidgen.world import features, train_features


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('features'))
  info = train_features.train_features(config_lib.load_config('experiments/configs/world_features.py:tiny'), out,
                                       verbose=False)
  return out, info


def test_training_is_deterministic_and_saves_what_the_report_names(trained, tmp_path):
  out, info = trained
  again = train_features.train_features(config_lib.load_config('experiments/configs/world_features.py:tiny'),
                                        str(tmp_path), verbose=False)
  assert again['params_sha256'] == info['params_sha256']
  saved = json.load(open(os.path.join(out, 'features.json')))
  assert saved['feature_dim'] == 32 and 0.0 <= saved['accuracy']['mean'] <= 1.0
  assert set(saved['accuracy']) >= {'background', 'color_present', 'color_direction', 'mean'}


def test_embed_is_per_video_and_deterministic(trained):
  out, _ = trained
  extractor = features.FeatureExtractor(out)
  config = config_lib.load_config('experiments/configs/world_features.py:tiny')
  source = world.make_source(config.data, 'eval', 0)
  videos = np.stack([source[i]['frames'] for i in range(5)])
  a = extractor.embed(videos, batch_size=2)
  b = extractor.embed(videos[::-1], batch_size=5)[::-1]  # other batches, other order: same features
  assert a.shape == (5, 32) and a.dtype == np.float32
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert not np.allclose(a[0], a[1])
  assert extractor.sha256[:12] in extractor.description


def test_a_changed_hash_an_old_format_and_a_missing_net_are_clear_errors(trained, tmp_path):
  out, info = trained
  with pytest.raises(FileNotFoundError, match='train_features'):
    features.FeatureExtractor(str(tmp_path))
  shutil.copytree(out, tmp_path / 'copy')
  (tmp_path / 'copy' / 'features.json').write_text(json.dumps(dict(info, params_sha256='0' * 64)))
  with pytest.raises(ValueError, match='do not match the hash'):
    features.FeatureExtractor(str(tmp_path / 'copy'))
  shutil.rmtree(tmp_path / 'copy' / 'checkpoints')  # what an older vidgen wrote: features.json + params.msgpack
  with pytest.raises(FileNotFoundError, match='older vidgen'):
    features.FeatureExtractor(str(tmp_path / 'copy'))


def test_the_net_trains_through_the_shared_loop_and_resumes_to_the_same_weights(trained, tmp_path):
  _, info = trained
  config = config_lib.load_config('experiments/configs/world_features.py:tiny', {'train.checkpoint_every': 1})
  loop.run(train_features.FeaturesTrainer(config), str(tmp_path), stop_after=2)  # as if preempted after 2 steps
  assert not (tmp_path / 'features.json').exists()
  resumed = train_features.train_features(config, str(tmp_path), verbose=False)
  assert resumed['params_sha256'] == info['params_sha256'] and resumed['steps'] == 3
  assert [r['step'] for r in metrics.read_metrics(str(tmp_path)) if 'train/loss' in r] == [1, 2, 3]


def test_labels_of_a_record():
  config = config_lib.load_config('experiments/configs/world.py:physics')
  record = world.make_source(config.data, 'eval', 0)[3]
  labels = features.record_labels(record)
  present = np.nonzero(labels['color_present'])[0]
  assert len(present) == record['num_objects']
  assert all(labels['color_shape'][c] >= 0 for c in present)
  assert (labels['color_shape'] >= 0).sum() == len(present)
  assert 0 <= labels['pan'] < len(features.PAN_CLASSES)
