"""Tests for vidgen/data/tokenizer.py: training, encode/decode, overflow, pickling, resume."""

from __future__ import annotations

import io
import logging
import os
import pickle
import random
import warnings

import ml_collections
import numpy as np
import pytest
import sentencepiece as spm

from vidgen.data import tokenizer as tokenizer_lib
from vidgen.data.tokenizer import PromptTruncatedWarning, Tokenizer, tokenizer_from_config

_SIZES = ['small', 'large']
_COLOURS = ['red', 'green', 'blue', 'yellow', 'magenta', 'cyan', 'white']
_SHAPES = ['circle', 'square', 'triangle']
_SPEEDS = ['slowly', 'quickly']
_DIRECTIONS = ['to the right', 'to the left', 'up', 'down', 'up and to the left', 'down and to the right']
_BACKGROUNDS = ['navy', 'black', 'grey', 'maroon', 'olive', 'dark blue']

VOCAB = 128


def make_captions(n: int = 300, seed: int = 0) -> list[str]:
  """World-like descriptive captions from a few word lists."""
  rng = random.Random(seed)
  return [f'a {rng.choice(_SIZES)} {rng.choice(_COLOURS)} {rng.choice(_SHAPES)} moves '
          f'{rng.choice(_SPEEDS)} {rng.choice(_DIRECTIONS)} on a {rng.choice(_BACKGROUNDS)} background'
          for _ in range(n)]


@pytest.fixture(scope='module')
def captions() -> list[str]:
  return make_captions()


@pytest.fixture(scope='module')
def model_file(tmp_path_factory, captions) -> str:
  path = os.path.join(tmp_path_factory.mktemp('tok'), 'tokenizer.model')
  Tokenizer.train(captions, VOCAB, path)
  return path


@pytest.fixture(scope='module')
def tok(model_file) -> Tokenizer:
  return Tokenizer.load(model_file)


def tok_config(**kwargs) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(dict(
      model_path='', vocab_size=VOCAB, max_length=32, overflow='truncate', train_examples=300))
  config.update(kwargs)
  return config


def test_train_writes_model_with_fixed_special_ids(tok, model_file):
  assert os.path.getsize(model_file) > 0
  assert tok.vocab_size == VOCAB
  assert (tok.pad_id, tok.unk_id, tok.eos_id) == (0, 1, 2)
  assert tok.path == model_file


def test_encode_decode_round_trip(tok, captions):
  ids, mask = tok.encode(captions[:20], max_length=32)
  assert tok.decode(ids, mask) == captions[:20]
  assert tok.decode(ids) == captions[:20]  # without a mask, pad ids are dropped
  assert tok.decode(ids[0]) == [captions[0]]


def test_encode_shapes_dtypes_padding_and_eos(tok, captions):
  ids, mask = tok.encode(captions[:5], max_length=40)
  assert ids.shape == mask.shape == (5, 40)
  assert ids.dtype == np.int32 and mask.dtype == np.bool_
  for row, keep in zip(ids, mask):
    n = int(keep.sum())
    assert keep[:n].all() and not keep[n:].any()  # real tokens first, then padding
    assert row[n - 1] == tok.eos_id
    assert (row[n:] == tok.pad_id).all()
  one_ids, one_mask = tok.encode(captions[0], max_length=40)  # a single string is one row
  np.testing.assert_array_equal(one_ids, ids[:1])
  np.testing.assert_array_equal(one_mask, mask[:1])
  # Word-level pieces: a caption fits well inside the default budget of 32.
  assert mask.sum(axis=1).max() <= 20


def test_empty_prompt_is_eos_then_padding(tok):
  ids, mask = tok.encode(['', 'a red circle'], max_length=8)
  np.testing.assert_array_equal(ids[0], [tok.eos_id] + [tok.pad_id] * 7)
  np.testing.assert_array_equal(mask[0], [True] + [False] * 7)
  assert tok.decode(ids, mask)[0] == ''
  empty_ids, empty_mask = tok.encode([], max_length=8)
  assert empty_ids.shape == empty_mask.shape == (0, 8)


def test_bytes_and_unseen_characters(tok):
  ids, _ = tok.encode([b'a red circle'], max_length=16)
  np.testing.assert_array_equal(ids, tok.encode('a red circle', max_length=16)[0])
  ids, mask = tok.encode('a red ☃', max_length=16)
  assert tok.unk_id in ids[mask]


def test_truncate_warns_once_and_keeps_first_tokens(tok, captions):
  full_ids, full_mask = tok.encode(captions[:3], max_length=64)
  n = int(full_mask[0].sum())
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    ids, mask = tok.encode(captions[:3], max_length=5)
  truncated = [w for w in caught if issubclass(w.category, PromptTruncatedWarning)]
  assert len(truncated) == 1
  message = str(truncated[0].message)
  assert '3 of 3 prompts' in message and 'data.tokenizer.max_length=5' in message
  longest = int(np.argmax(full_mask.sum(axis=1)))
  assert repr(captions[longest]) in message
  assert f'has {int(full_mask[longest].sum())} tokens' in message
  assert mask.all()
  np.testing.assert_array_equal(ids[:, :4], full_ids[:, :4])  # first pieces kept ...
  assert (ids[:, 4] == tok.eos_id).all()  # ... and the row still ends with eos
  assert n > 5


def test_fitting_prompts_do_not_warn(tok, captions):
  with warnings.catch_warnings():
    warnings.simplefilter('error', PromptTruncatedWarning)
    tok.encode(captions[:10], max_length=32)


def test_error_mode_names_token_count_and_config_key(tok, captions):
  _, full_mask = tok.encode(captions[0], max_length=64)
  n = int(full_mask.sum())
  with pytest.raises(ValueError, match=r'data\.tokenizer\.max_length') as info:
    tok.encode(captions[0], max_length=4, overflow='error')
  assert f'{n} tokens' in str(info.value)
  assert f'at least {n}' in str(info.value)
  assert 'max_length=4' in str(info.value)


def test_bad_arguments_fail_clearly(tok):
  with pytest.raises(ValueError, match='overflow must be one of'):
    tok.encode('a red circle', max_length=8, overflow='drop')
  with pytest.raises(ValueError, match='max_length must be an integer >= 1'):
    tok.encode('a red circle', max_length=0)
  with pytest.raises(TypeError, match='str or utf-8 bytes'):
    tok.encode([3], max_length=8)
  with pytest.raises(ValueError, match='outside the vocabulary'):
    tok.decode([[5, tok.vocab_size]])


def test_training_is_deterministic(captions, tmp_path, tok):
  a = Tokenizer.train(captions, VOCAB, tmp_path / 'a.model')
  b = Tokenizer.train(list(captions), VOCAB, None)
  assert a.serialized == b.serialized == tok.serialized
  assert (tmp_path / 'a.model').read_bytes() == tok.serialized


def test_too_large_vocab_stops_at_largest_allowed(captions, caplog):
  with caplog.at_level(logging.WARNING):
    capped = Tokenizer.train(captions, 5000, None)
  assert capped.vocab_size < 5000
  assert 'data.tokenizer.vocab_size=5000' in caplog.text
  # The cap is the largest size the captions allow: asking for exactly it gives the same pieces.
  exact = Tokenizer.train(captions, capped.vocab_size, None)
  pieces = lambda t: [t._sp.id_to_piece(i) for i in range(t.vocab_size)]  # pylint: disable=protected-access
  assert pieces(exact) == pieces(capped)
  ids, mask = capped.encode(captions[:5], max_length=32)
  assert capped.decode(ids, mask) == captions[:5]


def test_too_small_vocab_and_no_captions_fail_clearly(captions):
  with pytest.raises(ValueError, match=r'vocab_size >= \d+'):
    Tokenizer.train(captions, 8, None)
  with pytest.raises(ValueError, match='no non-empty captions'):
    Tokenizer.train(['', '  '], VOCAB, None)


def test_load_round_trips_and_bad_paths_fail_clearly(tok, model_file, tmp_path):
  again = Tokenizer.load(model_file)
  assert again.serialized == tok.serialized
  with pytest.raises(FileNotFoundError, match='data.tokenizer.model_path'):
    Tokenizer.load(tmp_path / 'missing.model')
  with pytest.raises(ValueError, match='is a directory'):
    Tokenizer.load(tmp_path)
  junk = tmp_path / 'junk.model'
  junk.write_bytes(b'this is not a model')
  with pytest.raises(ValueError, match='not a sentencepiece model'):
    Tokenizer.load(junk)
  empty = tmp_path / 'empty.model'
  empty.write_bytes(b'')
  with pytest.raises(ValueError, match='not a sentencepiece model'):
    Tokenizer.load(empty)


def test_pickle_round_trip_encodes_identically(tok, captions):
  clone = pickle.loads(pickle.dumps(tok))
  assert clone.serialized == tok.serialized and clone.vocab_size == tok.vocab_size
  for a, b in zip(tok.encode(captions[:10], 24), clone.encode(captions[:10], 24)):
    np.testing.assert_array_equal(a, b)


def test_from_config_trains_then_resumes(tmp_path, captions, monkeypatch):
  calls = []

  def captions_fn():
    calls.append(1)
    return iter(captions)

  first = tokenizer_from_config(tok_config(), captions_fn, str(tmp_path))
  saved = tmp_path / tokenizer_lib.WORKDIR_MODEL_NAME
  assert saved.read_bytes() == first.serialized
  assert len(calls) == 1

  def no_training(*args, **kwargs):
    raise AssertionError('a resumed run must not retrain the tokenizer')

  monkeypatch.setattr(Tokenizer, 'train', no_training)
  resumed = tokenizer_from_config(tok_config(), captions_fn, str(tmp_path))
  assert resumed.serialized == first.serialized
  assert len(calls) == 1


def test_from_config_caps_captions_and_uses_temp_dir_without_workdir(captions):
  def endless():
    while True:
      yield from captions

  tokenizer = tokenizer_from_config(tok_config(train_examples=len(captions)), endless, None)
  assert os.path.exists(tokenizer.path)
  assert os.path.basename(tokenizer.path) == tokenizer_lib.WORKDIR_MODEL_NAME
  assert tokenizer.serialized == Tokenizer.train(captions, VOCAB, None).serialized


def test_from_config_model_path_wins_and_is_copied(tmp_path, model_file, tok):
  def unused():
    raise AssertionError('captions are not needed when data.tokenizer.model_path is set')

  loaded = tokenizer_from_config(tok_config(model_path=model_file), unused, str(tmp_path))
  assert loaded.serialized == tok.serialized
  assert (tmp_path / tokenizer_lib.WORKDIR_MODEL_NAME).read_bytes() == tok.serialized
  other = Tokenizer.train(make_captions(seed=1), 64, None)
  other_path = tmp_path / 'other.model'
  other.save(other_path)
  with pytest.raises(ValueError, match='differs from data.tokenizer.model_path'):
    tokenizer_from_config(tok_config(model_path=str(other_path)), unused, str(tmp_path))


def _spm_model(captions: list[str], **ids) -> bytes:
  """A model trained by sentencepiece directly, with special ids other than vidgen's."""
  sink = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(captions), model_writer=sink, model_type='bpe', vocab_size=64,
      num_threads=1, minloglevel=2, **ids)
  return sink.getvalue()


def test_foreign_model_without_eos_truncates_to_first_tokens(captions):
  tok = Tokenizer(_spm_model(captions, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1))
  assert tok.eos_id is None
  full_ids, full_mask = tok.encode(captions[0], max_length=64)
  with pytest.warns(PromptTruncatedWarning, match='has .* tokens but'):
    ids, mask = tok.encode(captions[0], max_length=4)
  np.testing.assert_array_equal(ids, full_ids[:, :4])
  assert mask.all()
  ids, mask = tok.encode('', max_length=4)
  assert not mask.any() and (ids == tok.pad_id).all()


def test_foreign_model_without_pad_fails_clearly(captions):
  with pytest.raises(ValueError, match='defines no pad piece'):
    Tokenizer(_spm_model(captions))  # sentencepiece's defaults: pad_id=-1
