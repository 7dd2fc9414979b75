"""Config pieces shared by every experiment: the data block and its defaults.

Each experiment config builds on `data_config()` and changes only what it studies.
"""

import ml_collections


def world_config() -> ml_collections.ConfigDict:
  """The built-in world's scene options (see vidgen/data/world.py)."""
  return ml_collections.ConfigDict(dict(
      min_objects=1,
      max_objects=3,
      still_prob=0.1,       # chance that an object does not move
      gravity_prob=0.0,     # chance that a video has gravity (objects fall and bounce)
      occluder_prob=0.0,    # chance of a static bar that objects pass behind
      pan_prob=0.0,         # chance that the camera pans (the textured background scrolls)
      caption_style='descriptive',  # 'short' | 'descriptive' | 'mixed': which caption is `caption`
      train_size=1_000_000,  # the world is infinite; these are the index ranges each split exposes
      eval_size=1_000,
      heldout_size=1_000,
  ))


def data_config() -> ml_collections.ConfigDict:
  """Where videos come from and how they are cut, scaled, tokenized and batched."""
  return ml_collections.ConfigDict(dict(
      source='world',       # 'world' | 'folder' | 'array_record' | 'tfds'
      split='train',        # world: 'train' | 'eval' | 'heldout'; tfds: any split name
      eval_split='eval',
      # The clip every source is cut to (the world renders at exactly this size).
      num_frames=17,
      height=32,
      width=32,
      fps=8.0,
      clip_start='random',  # 'random' | 'start' | 'center': where the clip starts in a longer video
      short_clip='error',   # clip shorter than num_frames: 'error' | 'loop' | 'pad' (repeat last frame)
      crop='center',        # after resizing the short side: 'center' | 'random'
      world=world_config(),
      folder=ml_collections.ConfigDict(dict(
          path='',          # folder of .mp4/.webm/.gif files
          captions='',      # JSONL ({"file": ..., "caption": ...}) or CSV (file,caption); default: PATH/captions.jsonl
      )),
      array_record=ml_collections.ConfigDict(dict(pattern='')),  # e.g. /data/world-*.array_record
      keep_in_memory=False,  # read each record once, then serve it from memory (small sources, many epochs)
      tfds=ml_collections.ConfigDict(dict(
          name='', data_dir='', video_key='video', caption_key='caption', fps=8.0)),
      batch_size=8,         # global batch; each JAX process loads batch_size / process_count
      shuffle=True,
      num_epochs=None,      # None repeats forever
      num_workers=0,        # Grain worker processes (0: load in the main process)
      prefetch=2,           # batches buffered per worker
      tokenizer=ml_collections.ConfigDict(dict(
          model_path='',    # a sentencepiece .model; '' trains one on the source's captions
          vocab_size=512,
          max_length=64,
          overflow='truncate',  # prompt over max_length tokens: 'truncate' (with a warning) | 'error'
          train_examples=5000,  # captions drawn from the source to train the tokenizer
      )),
  ))


def train_config(**overrides) -> ml_collections.ConfigDict:
  """How long to train and how often to log, evaluate and checkpoint."""
  config = ml_collections.ConfigDict(dict(
      num_steps=1000,
      log_every=50,
      eval_every=500,        # 0 turns periodic evaluation off
      checkpoint_every=500,
      keep_checkpoints=3,
      async_checkpoints=True,
  ))
  config.update(overrides)
  return config
