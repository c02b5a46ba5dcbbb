"""IMDB: Keras load_data semantics, the Keras tokenizer rules, and the real data's statistics."""

import numpy as np
import pytest

from dropout_study import data
from dropout_study.data import files, imdb

# Four real reviews (aclImdb train/pos/0_9, train/neg/0_3, test/pos/0_10, test/neg/0_2) with
# their capitals and punctuation; the rows of imdb_rebuilt.npz they must tokenise to.
REVIEWS = {
    ("train", 0): (
        "Bromwell High is a cartoon comedy. It ran at the same time as some other programs about "
        'school life, such as "Teachers". My 35 years in the teaching profession lead me to '
        'believe that Bromwell High\'s satire is much closer to reality than is "Teachers". The '
        "scramble to survive financially, the insightful students who can see right through "
        "their pathetic teachers' pomp, the pettiness of the whole situation, all remind me of "
        "the schools I knew and their students. When I saw the episode in which a student "
        "repeatedly tried to burn down the school, I immediately recalled ......... at "
        ".......... High. A classic line: INSPECTOR: I'm here to sack one of your teachers. "
        "STUDENT: Welcome to Bromwell High. I expect that many adults of my age think that "
        "Bromwell High is far fetched. What a pity that it isn't!"
    ),
    ("train", 12500): (
        "Story of a man who has unnatural feelings for a pig. Starts out with a opening scene "
        "that is a terrific example of absurd comedy. A formal orchestra audience is turned into "
        "an insane, violent mob by the crazy chantings of it's singers. Unfortunately it stays "
        "absurd the WHOLE time with no general narrative eventually making it just too off "
        "putting. Even those from the era should be turned off. The cryptic dialogue would make "
        "Shakespeare seem easy to a third grader. On a technical level it's better than you "
        "might think with some good cinematography by future great Vilmos Zsigmond. Future stars "
        "Sally Kirkland and Frederic Forrest can be seen briefly."
    ),
    ("test", 0): (
        "I went and saw this movie last night after being coaxed to by a few friends of mine. "
        "I'll admit that I was reluctant to see it because from what I knew of Ashton Kutcher he "
        "was only able to do comedy. I was wrong. Kutcher played the character of Jake Fischer "
        "very well, and Kevin Costner played Ben Randall with such professionalism. The sign of "
        "a good movie is that it can toy with our emotions. This one did exactly that. The "
        "entire theater (which was sold out) was overcome by laughter during the first half of "
        "the movie, and were moved to tears during the second half. While exiting the theater I "
        "not only saw many women in tears, but many full grown men as well, trying desperately "
        "not to let anyone see them crying. This movie was great, and I suggest that you go see "
        "it before you judge."
    ),
    ("test", 12500): (
        "Once again Mr. Costner has dragged out a movie for far longer than necessary. Aside "
        "from the terrific sea rescue sequences, of which there are very few I just did not "
        "care about any of the characters. Most of us have ghosts in the closet, and Costner's "
        "character are realized early on, and then forgotten until much later, by which time I "
        "did not care. The character we should really care about is a very cocky, overconfident "
        "Ashton Kutcher. The problem is he comes off as kid who thinks he's better than anyone "
        "else around him and shows no signs of a cluttered closet. His only obstacle appears to "
        "be winning over Costner. Finally when we are well past the half way point of this "
        "stinker, Costner tells us all about ghosts. We are told why Kutcher is driven to be the "
        "best with no prior inkling or foreshadowing. No magic here, it was all I could do to "
        "keep from turning it off an hour in."
    ),
}


def keras_reference(
    sequences,
    *,
    num_words,
    skip_top,
    maxlen,
    padding,
    truncating,
    index_from=3,
    start_char=1,
    oov_char=2,
):
    """Keras imdb.load_data + pad_sequences, written row by row as Keras does."""
    rows = [[start_char] + [w + index_from for w in s] for s in sequences]
    rows = [[w if skip_top <= w < num_words else oov_char for w in s] for s in rows]
    out = np.zeros((len(rows), maxlen), dtype=np.int32)
    for i, s in enumerate(rows):
        s = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if padding == "pre":
            out[i, maxlen - len(s) :] = s
        else:
            out[i, : len(s)] = s
    return out


def sample_config(**fields):
    config = data.default_config("imdb")
    config.update({"validation": "test", **fields})  # the file's own splits, unless a test asks
    return config


@pytest.fixture(scope="module")
def sample_reviews():
    config = sample_config()
    return imdb.read(config, imdb.read_word_index(config))


@pytest.fixture(scope="module")
def local_reviews():
    if not files.LOCAL_ROOT.is_dir():
        pytest.skip(f"the data folder {files.LOCAL_ROOT} is absent")
    config = sample_config(source="local")
    return dict(
        zip(("train", "test"), imdb.read(config, imdb.read_word_index(config)), strict=True)
    )


@pytest.fixture(scope="module")
def word_index():
    return imdb.read_word_index(sample_config())


@pytest.mark.parametrize(
    "num_words, skip_top, maxlen, padding, truncating",
    [
        (20000, 0, 200, "pre", "pre"),
        (5000, 10, 80, "post", "post"),
        (500, 0, 400, "pre", "post"),
        (88588, 3, 50, "post", "pre"),
    ],
)
def test_ids_equal_keras_reference(
    sample_reviews, num_words, skip_top, maxlen, padding, truncating
):
    train = sample_reviews[0]
    sequences = np.split(train.ranks, np.cumsum(train.lengths)[:-1])
    config = sample_config(
        num_words=num_words,
        skip_top=skip_top,
        maxlen=maxlen,
        padding=padding,
        truncating=truncating,
    )
    ids = imdb.keras_ids(train, config, num_words)
    expected = keras_reference(
        sequences,
        num_words=num_words,
        skip_top=skip_top,
        maxlen=maxlen,
        padding=padding,
        truncating=truncating,
    )
    np.testing.assert_array_equal(ids, expected)


def test_tokenizer_rules():
    index = {"hello": 1, "world": 2, "Àb": 3, "it's": 4, "àb": 5}
    reviews = imdb.tokenize(["Hello,\tWORLD!\r ÀB (it's)", b"unknown HELLO"], index, [1, 0])
    # "\r" is no Keras filter: "WORLD!\r" -> "world", "\r" (unknown, dropped). Only ASCII is
    # lower-cased, so "ÀB" -> "Àb", not "àb".
    np.testing.assert_array_equal(reviews.lengths, [4, 1])
    np.testing.assert_array_equal(reviews.ranks, [1, 2, 3, 4, 1])
    np.testing.assert_array_equal(reviews.labels, [1, 0])


def test_tokenizer_reproduces_rebuilt_rows_from_real_text(local_reviews, word_index):
    tokens = imdb.tokenize(list(REVIEWS.values()), word_index, np.zeros(len(REVIEWS)))
    for i, (split, row) in enumerate(REVIEWS):
        np.testing.assert_array_equal(tokens.row(i), local_reviews[split].row(row))
    assert tokens.lengths.tolist() == [138, 112, 152, 167]


def test_tokenizer_reproduces_sample_rows_from_rendered_text(sample_reviews, word_index):
    """Each review rendered as text with random capitals and filter characters tokenises back."""
    rng = np.random.default_rng(0)
    words = {rank: word for word, rank in word_index.items()}
    upper = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    separators = [" ", "  ", ", ", ". ", "!\n", "\t", " (", ") ", '"', "...", " - "]
    train = sample_reviews[0]
    sequences = np.split(train.ranks, np.cumsum(train.lengths)[:-1])[::10]
    texts = []
    for ranks in sequences:
        parts = []
        for rank in ranks:
            word = words[int(rank)]
            parts.append(word.translate(upper) if rng.random() < 0.3 else word)
            parts.append(separators[rng.integers(len(separators))])
        texts.append("".join(parts))
    tokens = imdb.tokenize(texts, word_index, np.zeros(len(texts)))
    np.testing.assert_array_equal(tokens.lengths, [len(s) for s in sequences])
    np.testing.assert_array_equal(tokens.ranks, np.concatenate(sequences))


def test_sample_is_balanced_and_in_range():
    dataset = data.load(sample_config(num_words=5000, maxlen=120))
    assert dataset.train.x.shape == (2000, 120) and dataset.train.x.dtype == np.int32
    assert dataset.validation.x.shape == (1000, 120)
    np.testing.assert_array_equal(np.bincount(dataset.train.y), [1000, 1000])
    np.testing.assert_array_equal(np.bincount(dataset.validation.y), [500, 500])
    assert dataset.train.x.min() == 0 and dataset.train.x.max() == 4999
    # padding 'pre': every row ends in a word, short rows start with zeros and then start_char
    assert (dataset.train.x[:, -1] >= 2).all()
    short = (dataset.train.x == 0).any(axis=1)
    first = np.argmax(dataset.train.x[short] != 0, axis=1)
    assert (dataset.train.x[short][np.arange(short.sum()), first] == 1).all()
    assert dataset.info["vocab_size"] == 5000 and dataset.info["source"] == "sample"


def test_num_words_zero_keeps_every_word(word_index):
    dataset = data.load(sample_config(num_words=0, maxlen=3000))
    assert dataset.info["vocab_size"] == 3 + len(word_index) + 1 == 88588
    assert not (dataset.train.x == 2).any()  # no OOV id when nothing is capped


def test_holdout_is_stratified_and_deterministic():
    config = sample_config(validation="holdout", holdout_fraction=0.2, split_seed=3)
    first, second = data.load(config), data.load(config)
    np.testing.assert_array_equal(first.validation.x, second.validation.x)
    np.testing.assert_array_equal(np.bincount(first.validation.y), [200, 200])
    assert first.info["sizes"] == {"train": 1600, "validation": 400, "test": 1000}
    assert first.info["validation"] == "holdout" and first.info["holdout_fraction"] == 0.2
    train_rows = {row.tobytes() for row in first.train.x}
    overlap = sum(row.tobytes() in train_rows for row in first.validation.x)
    assert overlap <= 2  # only reviews that are duplicates in the data itself


def test_local_full_imdb_statistics(local_reviews):
    train, test = local_reviews["train"], local_reviews["test"]
    assert len(train.lengths) == len(test.lengths) == 25000
    np.testing.assert_array_equal(np.bincount(train.labels), [12500, 12500])
    np.testing.assert_array_equal(np.bincount(test.labels), [12500, 12500])
    assert train.ranks.size == 5942841 and test.ranks.size == 5745105
    assert round(float(np.mean(train.lengths + 1)), 2) == 238.71
    assert round(float(np.mean(test.lengths + 1)), 2) == 230.80
    assert train.ranks.min() == 1 and train.ranks.max() == 88584
    dataset = data.load(sample_config(source="local", max_train=5000, max_eval=3000))
    assert dataset.info["available"] == {"train": 25000, "validation": 25000, "test": 25000}
    assert dataset.info["sizes"] == {"train": 5000, "validation": 3000, "test": 3000}
    assert abs(dataset.train.y.mean() - 0.5) < 0.03
