"""IMDB reviews as padded word-id sequences, processed exactly like Keras' `imdb.load_data`.

Every source yields each review as raw word ranks of the official Keras word index (1 = most
frequent word of the training reviews, so the vocabulary comes from the training split only);
`keras_ids` then applies index_from, the start and OOV ids, the num_words / skip_top caps and
pads or truncates to maxlen. Unlike Keras, maxlen never drops long reviews, and num_words=0 keeps
every word. Rows keep file order (Keras shuffles them with seed 113): batching shuffles anyway.
"""

import dataclasses
import itertools
import json
import lzma

import numpy as np
from absl import logging

from dropout_study import errors
from dropout_study.data import data_config, files, splits, tfds_source

LOCAL_NPZ = "imdb/imdb_rebuilt.npz"
LOCAL_WORD_INDEX = "imdb/imdb_word_index.json"
SAMPLE_NPZ = "imdb.npz"
SAMPLE_WORD_INDEX = "imdb_word_index.json.xz"
LABEL_NAMES = ("neg", "pos")

# Keras Tokenizer rules: lower-case ASCII A-Z only (Python-2 byte-string .lower()), turn the
# default filter characters plus tab and newline into spaces, split on single spaces. Applied to
# UTF-8 bytes, which is exact (multi-byte characters hold no ASCII bytes) and faster than str.
KERAS_FILTERS = b'!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
_TOKEN_TABLE = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ" + KERAS_FILTERS,
    b"abcdefghijklmnopqrstuvwxyz" + b" " * len(KERAS_FILTERS),
)


@dataclasses.dataclass(frozen=True)
class Reviews:
    """Ragged reviews: ranks (total,) int32 concatenated, lengths (N,) int64, labels (N,) int32."""

    ranks: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_lists(cls, sequences, labels):
        """From an iterable of rank lists (the Keras npz layout)."""
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        ranks = np.fromiter(
            itertools.chain.from_iterable(sequences), dtype=np.int32, count=int(lengths.sum())
        )
        return cls(ranks, lengths, np.asarray(labels, dtype=np.int32))

    def row(self, i):
        """The ranks of review i."""
        start = int(self.lengths[:i].sum())
        return self.ranks[start : start + self.lengths[i]]


def tokenize(texts, word_index, labels):
    """Reviews from raw text (str or UTF-8 bytes) with the Keras rules; unknown words dropped."""
    lookup = {word.encode(): rank for word, rank in word_index.items()}.get
    sequences = []
    for text in texts:
        words = (text.encode() if isinstance(text, str) else text).translate(_TOKEN_TABLE)
        sequences.append([rank for rank in map(lookup, words.split(b" ")) if rank is not None])
    return Reviews.from_lists(sequences, labels)


def pad_sequences(flat, lengths, maxlen, *, padding="pre", truncating="pre", value=0):
    """(N, maxlen) int32 like keras pad_sequences, from concatenated sequences (vectorised)."""
    kept = np.minimum(lengths, maxlen)
    starts = np.cumsum(lengths) - lengths
    src = starts + (lengths - kept if truncating == "pre" else 0)
    dst = maxlen - kept if padding == "pre" else np.zeros_like(kept)
    rows = np.repeat(np.arange(len(lengths)), kept)
    within = np.arange(int(kept.sum())) - np.repeat(np.cumsum(kept) - kept, kept)
    out = np.full((len(lengths), maxlen), value, dtype=np.int32)
    out[rows, np.repeat(dst, kept) + within] = flat[np.repeat(src, kept) + within]
    return out


def keras_ids(reviews, config, vocab_size):
    """(N, maxlen) int32 ids: [start_char] + ranks + index_from, capped to [skip_top, vocab)."""
    lengths = reviews.lengths + 1
    flat = np.empty(int(lengths.sum()), dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    is_start = np.zeros(len(flat), dtype=bool)
    is_start[starts] = True
    flat[is_start] = config.start_char
    flat[~is_start] = reviews.ranks.astype(np.int64) + config.index_from
    # As in Keras the start id is capped too (it becomes oov_char when skip_top > start_char).
    flat = np.where((flat >= config.skip_top) & (flat < vocab_size), flat, config.oov_char)
    return pad_sequences(
        flat, lengths, config.maxlen, padding=config.padding, truncating=config.truncating
    )


def check(config):
    """ValueError naming the first IMDB field out of range."""
    data_config.check_range(config, "maxlen", 1, np.inf)
    errors.check_choice("config.data.padding", config.padding, ("pre", "post"))
    errors.check_choice("config.data.truncating", config.truncating, ("pre", "post"))
    for field in ("skip_top", "index_from", "start_char", "oov_char"):
        data_config.check_range(config, field, 0, np.inf)
    if config.num_words:
        data_config.check_range(config, "num_words", config.index_from + 1, np.inf)


def read_word_index(config):
    """{word: rank}: the official Keras index (local copy, else the one shipped in the package)."""
    if config.source == "local":
        path = files.require(
            files.root_for("local", config.data_dir),
            LOCAL_WORD_INDEX,
            verify=config.verify_checksums,
        )
        with files.parsing(path):
            return json.loads(path.read_bytes())
    root = files.root_for("sample", config.data_dir if config.source == "sample" else "")
    path = files.require(root, SAMPLE_WORD_INDEX, verify=config.verify_checksums)
    with files.parsing(path):
        return json.loads(lzma.decompress(path.read_bytes()))


def read(config, word_index):
    """(train, test) Reviews from config.source."""
    if config.source == "tfds":
        texts = [
            tfds_source.read("imdb", split, data_dir=config.data_dir, download=config.download)[0]
            for split in ("train", "test")
        ]
        logging.info("tokenising %d IMDB reviews", sum(len(t["text"]) for t in texts))
        return tuple(tokenize(t["text"], word_index, t["label"]) for t in texts)
    root = files.root_for(config.source, config.data_dir)
    name = LOCAL_NPZ if config.source == "local" else SAMPLE_NPZ
    path = files.require(root, name, verify=config.verify_checksums)
    with files.parsing(path), np.load(path, allow_pickle=config.source == "local") as npz:
        if config.source == "local":
            return tuple(
                Reviews.from_lists(npz[f"x_{split}"], npz[f"y_{split}"])
                for split in ("train", "test")
            )
        return tuple(
            Reviews(npz[f"{split}_ranks"], npz[f"{split}_lengths"], npz[f"{split}_labels"])
            for split in ("train", "test")
        )


def load(config):
    """Dataset of (N, maxlen) int32 ids and int32 labels (1 = positive)."""
    check(config)
    word_index = read_word_index(config)
    vocab_size = config.num_words or config.index_from + max(word_index.values()) + 1
    train, test = (
        splits.Split(keras_ids(reviews, config, vocab_size), reviews.labels)
        for reviews in read(config, word_index)
    )
    train, validation, test, info = splits.assign(train, test, config)
    info.update(
        num_classes=2,
        label_names=LABEL_NAMES,
        input_shape=(config.maxlen,),
        vocab_size=vocab_size,
        origin=(
            {"local": LOCAL_NPZ, "sample": f"package sample {SAMPLE_NPZ}"}.get(config.source)
            or "tfds imdb_reviews, tokenised with the Keras rules"
        ),
        **{field: config[field] for field in data_config.PER_DATASET["imdb"]},
    )
    return splits.Dataset(train, validation, test, info)
