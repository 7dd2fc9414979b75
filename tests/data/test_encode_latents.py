"""Latent caching: encode_latents writes shards the pipeline reads as training batches."""

import numpy as np

from vidgen import config_lib, runs
from vidgen.data import encode_latents, pipeline, sources
from vidgen.models import vae as vae_lib


def test_cached_latents_equal_direct_encoding_and_feed_the_pipeline(tiny_vae_run, tmp_path):
  config = config_lib.load_config('experiments/configs/vae_world.py:tiny', {'data.split': 'eval'})
  out = str(tmp_path / 'latents')
  summary = encode_latents.encode_latents(config, tiny_vae_run, out, num_records=5, records_per_shard=3,
                                          batch_size=2)
  assert summary['num_records'] == 5 and summary['num_shards'] == 2
  assert summary['keys']['latent_mean']['shape'] == [2, 4, 4, 4]  # 5×16×16 video, 4×4×4 compression

  cached = sources.ArrayRecordSource(summary['pattern'])
  assert len(cached) == 5
  model, params, _ = runs.load_vae(tiny_vae_run)
  world = sources.make_source(config.data, 'eval', config.seed)
  for i in (0, 4):
    record = world[i]
    video = record['frames'][None].astype(np.float32) / 127.5 - 1
    mean, logvar = model.apply({'params': params}, video, method=vae_lib.VAE.encode)
    np.testing.assert_allclose(cached[i]['latent_mean'], mean[0], atol=1e-5)
    np.testing.assert_allclose(cached[i]['latent_logvar'], logvar[0], atol=1e-5)
    assert cached[i]['caption'] == record['caption'] and cached[i]['index'] == i

  config.data.source = 'array_record'
  config.data.array_record.pattern = summary['pattern']
  batch = next(iter(pipeline.make_dataset(config, 'train')))
  assert batch['latent_mean'].shape == (2, 2, 4, 4, 4) and 'video' not in batch
