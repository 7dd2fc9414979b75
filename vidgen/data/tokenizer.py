"""Prompt tokenizer: a sentencepiece model trained on the source's captions, or loaded from a file.

The text encoder is trained with the DiT, so vidgen trains its own small vocabulary on the
captions it will see (config `data.tokenizer`), saves it as `WORKDIR/tokenizer.model` so a
resumed run and the sampler use the same ids, and ships the model bytes to Grain worker
processes by pickling.

Ids, fixed for every model that `Tokenizer.train` writes:
  pad = 0   fills rows to `max_length`; `mask` is False there.
  unk = 1   characters the captions never showed (no byte fallback: 256 byte pieces would
            dwarf a toy vocabulary).
  eos = 2   appended to every prompt. It gives the empty prompt (the unconditional prompt of
            classifier-free guidance) one real token, so attention over the text is never
            fully masked, and it marks where a truncated prompt was cut.
  no bos:   the text encoder is bidirectional and has no use for a start token.

Models loaded from elsewhere keep their own ids; they must define a pad piece, and eos is
appended only if they define one.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
import re
import tempfile
import warnings
from typing import Any, Callable, Iterable, Sequence

import ml_collections
import numpy as np
import sentencepiece as spm
from absl import logging
from etils import epath

PathLike = str | os.PathLike

OVERFLOWS = ('truncate', 'error')


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
  """The `data.tokenizer` block."""
  model_path: str = ''    # a sentencepiece .model; '' trains one on the source's captions
  vocab_size: int = 512
  max_length: int = 64
  overflow: str = 'truncate'  # prompt over max_length tokens: 'truncate' (with a warning) | 'error'
  train_examples: int = 5000  # captions drawn from the source to train the tokenizer

  def __post_init__(self):
    if self.vocab_size < 1 or self.max_length < 1 or self.train_examples < 1:
      raise ValueError('data.tokenizer.vocab_size, max_length and train_examples must be >= 1; got '
                       f'{self.vocab_size}, {self.max_length}, {self.train_examples}.')
    if self.overflow not in OVERFLOWS:
      raise ValueError(f'data.tokenizer.overflow={self.overflow!r}: use one of {OVERFLOWS}.')


# The file that holds a run's tokenizer, next to its checkpoints.
WORKDIR_MODEL_NAME = 'tokenizer.model'



class PromptTruncatedWarning(UserWarning):
  """A prompt had more tokens than `data.tokenizer.max_length` and was cut."""


class Tokenizer:
  """A sentencepiece model that turns prompts into fixed-length id rows and a mask.

  Picklable: the state is the serialized model, so Grain workers rebuild the same processor.
  """

  def __init__(self, model_proto: bytes, path: PathLike | None = None):
    """Wraps serialized sentencepiece model bytes; `path` only says where they came from."""
    source = f'{os.fspath(path)!r}' if path is not None else 'the given bytes'
    if not isinstance(model_proto, (bytes, bytearray)) or not model_proto:
      raise ValueError(f'{source} is not a sentencepiece model: expected non-empty model bytes.')
    try:
      processor = spm.SentencePieceProcessor(model_proto=bytes(model_proto))
    except RuntimeError as e:
      raise ValueError(f'{source} is not a sentencepiece model ({e}).') from e
    if processor.get_piece_size() <= 0:
      raise ValueError(f'{source} is not a sentencepiece model (it holds no pieces).')
    if processor.pad_id() < 0:
      raise ValueError(
          f'The sentencepiece model in {source} defines no pad piece (pad_id=-1); vidgen pads '
          'prompts with it. Retrain it with a pad id (Tokenizer.train uses pad_id=0), or leave '
          'data.tokenizer.model_path empty to train one on the captions.')
    self._serialized = bytes(model_proto)
    self._sp = processor
    self.path = os.fspath(path) if path is not None else None

  # ---- construction -------------------------------------------------------------------------

  @classmethod
  def train(
      cls,
      captions: Iterable[str],
      vocab_size: int,
      path: PathLike | None,
      *,
      character_coverage: float = 0.9995,
  ) -> Tokenizer:
    """Trains a BPE model on `captions` and, if `path` is given, writes it there.

    BPE, not sentencepiece's default unigram: on a small closed lexicon such as the world's
    captions, unigram collapses to near-character pieces (a descriptive caption becomes ~50
    tokens), while BPE reaches whole-word pieces (~16 tokens).

    Deterministic: the same captions in the same order give the same model bytes (one thread,
    no sentence shuffling, trained in memory so no file name enters the model).

    `vocab_size` is an upper bound: if the captions cannot fill it (sentencepiece's "Vocabulary
    size too high"), the model stops at the largest size they allow and a warning says so.
    A config's default vocabulary then works on any caption set, and the text encoder must size
    its embedding from `Tokenizer.vocab_size`, never from the config.

    Args:
      captions: a finite iterable of caption strings; empty ones are skipped.
      vocab_size: the largest vocabulary wanted, special pieces included.
      path: where to write the `.model` file (parents are created), or None to keep it in memory.
      character_coverage: share of caption characters that get their own piece; the rarest rest
        map to unk.

    Returns:
      The trained tokenizer.
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or vocab_size < 4:
      raise ValueError(f'data.tokenizer.vocab_size must be an integer >= 4, got {vocab_size!r}.')
    if isinstance(captions, (str, bytes)):
      raise TypeError('Tokenizer.train takes an iterable of captions, not a single string.')
    sentences = [_as_text(c) for c in captions]
    sentences = [s for s in sentences if s.strip()]
    if not sentences:
      raise ValueError('Cannot train a tokenizer: the caption source gave no non-empty captions.')
    writer = io.BytesIO()
    try:
      spm.SentencePieceTrainer.train(
          sentence_iterator=iter(sentences),
          model_writer=writer,
          model_type='bpe',
          vocab_size=int(vocab_size),
          hard_vocab_limit=False,   # stop at the largest size the captions allow (see above)
          character_coverage=character_coverage,
          pad_id=0, unk_id=1, eos_id=2, bos_id=-1,
          shuffle_input_sentence=False,
          num_threads=1,
          minloglevel=2,
      )
    except RuntimeError as e:
      match = re.search(r'smaller than required_chars\. \d+ vs (\d+)', str(e))
      if match:
        raise ValueError(
            f'data.tokenizer.vocab_size={vocab_size} is too small for these captions: their '
            f'characters and the special pieces alone need {match.group(1)}. Set '
            f'data.tokenizer.vocab_size >= {match.group(1)}.') from e
      raise ValueError(f'Training the tokenizer on {len(sentences)} captions failed: {e}') from e
    tokenizer = cls(writer.getvalue())
    if tokenizer.vocab_size < vocab_size:
      logging.warning(
          'The %d captions allow at most %d tokenizer pieces, fewer than data.tokenizer.vocab_size=%d; '
          'the tokenizer has %d.', len(sentences), tokenizer.vocab_size, vocab_size, tokenizer.vocab_size)
    if path is not None:
      tokenizer.save(path)
    return tokenizer

  @classmethod
  def load(cls, path: PathLike) -> Tokenizer:
    """Loads a sentencepiece `.model` file (local or any path etils.epath reads, e.g. gs://)."""
    p = epath.Path(path)
    if not p.exists():
      raise FileNotFoundError(
          f'No sentencepiece model at {os.fspath(path)!r}. Check data.tokenizer.model_path, or '
          'leave it empty to train one on the captions.')
    if p.is_dir():
      raise ValueError(
          f'{os.fspath(path)!r} is a directory; data.tokenizer.model_path must name a '
          'sentencepiece .model file.')
    return cls(p.read_bytes(), path=path)

  def save(self, path: PathLike) -> None:
    """Writes the model bytes to `path` atomically, so a preempted run never leaves half a file."""
    p = epath.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.parent / f'{p.name}.tmp-{os.getpid()}'
    tmp.write_bytes(self._serialized)
    tmp.replace(p)
    self.path = os.fspath(path)

  # ---- properties ---------------------------------------------------------------------------

  @property
  def vocab_size(self) -> int:
    """Number of ids, special pieces included: the text encoder's embedding rows."""
    return self._sp.get_piece_size()

  @property
  def pad_id(self) -> int:
    return self._sp.pad_id()

  @property
  def unk_id(self) -> int:
    return self._sp.unk_id()

  @property
  def eos_id(self) -> int | None:
    """The id appended to every prompt, or None if the model defines no eos."""
    eos = self._sp.eos_id()
    return eos if eos >= 0 else None

  @property
  def serialized(self) -> bytes:
    """The model file's bytes: what `save` writes and what pickling carries."""
    return self._serialized

  # ---- encode / decode ----------------------------------------------------------------------

  def encode(
      self,
      texts: str | Sequence[str],
      max_length: int,
      overflow: str = 'truncate',
  ) -> tuple[np.ndarray, np.ndarray]:
    """Tokenizes prompts into padded rows.

    Args:
      texts: one prompt or a sequence of N prompts (str, or utf-8 bytes as sources store them).
        The empty string is allowed: it is the unconditional prompt (eos, then padding).
      max_length: tokens per row, eos included (`data.tokenizer.max_length`).
      overflow: what to do with a prompt over `max_length` tokens (`data.tokenizer.overflow`):
        'truncate' keeps its first max_length - 1 pieces and eos (its first max_length pieces
        if the model has no eos) and warns once per call with PromptTruncatedWarning;
        'error' raises ValueError.

    Returns:
      ids: int32 [N, max_length], padded with `pad_id`.
      mask: bool [N, max_length], True on real tokens (eos included).
    """
    if overflow not in OVERFLOWS:
      raise ValueError(
          f"data.tokenizer.overflow must be one of {OVERFLOWS}, got {overflow!r}.")
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
      raise ValueError(f'data.tokenizer.max_length must be an integer >= 1, got {max_length!r}.')
    if isinstance(texts, (str, bytes)):
      texts = [texts]
    prompts = [_as_text(t) for t in texts]
    rows = self._sp.encode(prompts, out_type=int) if prompts else []
    eos = self.eos_id
    if eos is not None:
      rows = [row + [eos] for row in rows]

    over = [i for i, row in enumerate(rows) if len(row) > max_length]
    if over:
      longest = max(over, key=lambda i: len(rows[i]))
      n_tokens = len(rows[longest])
      which = (f'{len(over)} of {len(rows)} prompts exceed the token budget; the longest, '
               if len(over) > 1 else 'A prompt exceeds the token budget: ')
      comma = ',' if len(over) > 1 else ''
      detail = (f'{which}{_preview(prompts[longest])}{comma} has {n_tokens} tokens'
                f'{" (eos included)" if eos is not None else ""} but '
                f'data.tokenizer.max_length={max_length}.')
      if overflow == 'error':
        raise ValueError(
            f'{detail} Raise data.tokenizer.max_length to at least {n_tokens}, shorten the '
            "prompt, or set data.tokenizer.overflow='truncate'.")
      kept = f'the first {max_length} tokens' + (' (eos last)' if eos is not None else '')
      warnings.warn(
          f'{detail} Kept {kept}; raise data.tokenizer.max_length to keep the whole prompt.',
          PromptTruncatedWarning, stacklevel=2)
      for i in over:
        rows[i] = rows[i][:max_length - 1] + [eos] if eos is not None else rows[i][:max_length]

    ids = np.full((len(rows), max_length), self.pad_id, dtype=np.int32)
    mask = np.zeros((len(rows), max_length), dtype=bool)
    for i, row in enumerate(rows):
      ids[i, :len(row)] = row
      mask[i, :len(row)] = True
    return ids, mask

  def decode(self, ids: Any, mask: Any | None = None) -> list[str]:
    """Turns id rows [N, L] (or one row [L]) back into text; pad and eos do not print.

    Positions where `mask` is False are dropped; without a mask, pad ids are.
    """
    ids = np.asarray(ids)
    if ids.ndim == 1:
      ids = ids[None]
    if ids.ndim != 2:
      raise ValueError(f'decode expects ids of shape [N, L] or [L], got shape {ids.shape}.')
    if mask is None:
      mask = ids != self.pad_id
    else:
      mask = np.asarray(mask, dtype=bool)
      if mask.ndim == 1:
        mask = mask[None]
      if mask.shape != ids.shape:
        raise ValueError(f'decode: mask shape {mask.shape} does not match ids shape {ids.shape}.')
    bad = ids[mask & ((ids < 0) | (ids >= self.vocab_size))]
    if bad.size:
      raise ValueError(f'decode: id {int(bad[0])} is outside the vocabulary [0, {self.vocab_size}).')
    return [self._sp.decode([int(t) for t in row[keep]]) for row, keep in zip(ids, mask)]

  # ---- pickling (Grain workers) ---------------------------------------------------------------

  def __getstate__(self) -> dict[str, Any]:
    return {'serialized': self._serialized, 'path': self.path}

  def __setstate__(self, state: dict[str, Any]) -> None:
    self.__init__(state['serialized'], path=state['path'])

  def __repr__(self) -> str:
    return f'Tokenizer(vocab_size={self.vocab_size}, path={self.path!r})'


def tokenizer_from_config(
    tok_config: ml_collections.ConfigDict,
    captions_fn: Callable[[], Iterable[str]],
    workdir: PathLike | None,
) -> Tokenizer:
  """The run's tokenizer from `data.tokenizer`: given, resumed from the workdir, or trained.

  In order:
    1. `model_path` set: load it. With a workdir, a copy is saved as WORKDIR/tokenizer.model so
       the run's directory alone is enough to sample from it; if the workdir already holds a
       different model, that is an error (the run's checkpoints were trained with that one).
    2. WORKDIR/tokenizer.model exists: load it (a resumed run keeps its ids; no retraining).
    3. Otherwise train on the first `train_examples` captions of `captions_fn()` with
       `vocab_size` (an upper bound, see `Tokenizer.train`) and save to WORKDIR/tokenizer.model,
       or to a fresh temporary directory if `workdir` is None.

  Every process of a multi-host run gets the same bytes (training is deterministic) and the
  write is atomic, so processes racing to save it are harmless.
  """
  saved = epath.Path(workdir) / WORKDIR_MODEL_NAME if workdir is not None else None
  if tok_config.model_path:
    tokenizer = Tokenizer.load(tok_config.model_path)
    if saved is not None:
      if not saved.exists():
        Tokenizer(tokenizer.serialized).save(saved)
      elif saved.read_bytes() != tokenizer.serialized:
        raise ValueError(
            f'{os.fspath(saved)} differs from data.tokenizer.model_path={tok_config.model_path!r}; '
            f'the run in {os.fspath(workdir)!r} was trained with the former. Use a new workdir '
            'for the new tokenizer, or leave data.tokenizer.model_path empty to resume.')
    return tokenizer
  if saved is not None and saved.exists():
    tokenizer = Tokenizer.load(saved)
    logging.info('Resumed the tokenizer from %s (%d pieces).', saved, tokenizer.vocab_size)
    if tokenizer.vocab_size > tok_config.vocab_size:
      logging.warning(
          '%s has %d pieces but data.tokenizer.vocab_size=%d; the saved model wins (the run was '
          'trained with it). Use a new workdir to train a new tokenizer.',
          saved, tokenizer.vocab_size, tok_config.vocab_size)
    return tokenizer
  if saved is None:
    saved = epath.Path(tempfile.mkdtemp(prefix='vidgen_tokenizer_')) / WORKDIR_MODEL_NAME
  captions = captions_fn()
  if tok_config.train_examples:
    captions = itertools.islice(captions, int(tok_config.train_examples))
  tokenizer = Tokenizer.train(captions, tok_config.vocab_size, saved)
  logging.info('Trained a %d-piece tokenizer, saved to %s.', tokenizer.vocab_size, saved)
  return tokenizer


def _as_text(text: Any) -> str:
  """A caption as str: sources may hand over utf-8 bytes (ArrayRecord, TFDS)."""
  if isinstance(text, (bytes, bytearray)):
    return bytes(text).decode('utf-8')
  if isinstance(text, str):
    return text
  raise TypeError(f'Prompts must be str or utf-8 bytes, got {type(text).__name__}: {text!r}.')


def _preview(text: str, limit: int = 80) -> str:
  """A prompt short enough to quote in a message."""
  return repr(text if len(text) <= limit else text[:limit] + '...')
