"""MLM masking strategies: 15% of tokens predicted, 80/10/10 replacement, never '<cls>' or
'<sep>', whole words and spans kept together, deterministic for a seed."""
import random

import numpy as np
import pytest

from gluonbert.data import (MASKING_STRATEGIES, MaskingConfig, MLMMasker, Vocab,
                            embedded_slice_dir, load_wiki_dataset)
from gluonbert.data.synthetic import synthetic_pretraining_batch
from gluonbert.data.pretraining import RESERVED_TOKENS


@pytest.fixture(scope='module', params=MASKING_STRATEGIES)
def masked(request):
    """(strategy, dataset) over the whole embedded slice: ~2,450 examples, ~110,000 tokens."""
    return request.param, load_wiki_dataset(64, embedded_slice_dir(), seed=0,
                                            masking=request.param, use_cache=False)


def predictions(dataset):
    """Per predicted token: its example, position, original ID and the ID the model sees."""
    rows, slots = np.nonzero(dataset.all_mlm_weights)
    positions = dataset.all_pred_positions[rows, slots]
    return rows, positions, dataset.all_mlm_labels[rows, slots], dataset.all_token_ids[
        rows, positions]


def test_every_strategy_predicts_15_percent_of_tokens(masked):
    strategy, dataset = masked
    assert dataset.valid_lens.sum() > 100_000
    per_example = dataset.all_mlm_weights.sum(axis=1)
    budget = np.maximum(1, np.round(dataset.valid_lens * 0.15))  # half to even, as Python's round
    assert (per_example <= budget).all()
    assert (per_example == budget).mean() > 0.99
    assert per_example.sum() / dataset.valid_lens.sum() == pytest.approx(0.15, abs=0.005)


def test_every_strategy_replaces_80_percent_by_mask_10_by_random_10_unchanged(masked):
    strategy, dataset = masked
    rows, positions, labels, inputs = predictions(dataset)
    fate = np.where(inputs == dataset.vocab['<mask>'], 0, np.where(inputs == labels, 1, 2))
    # Spans share one fate: count runs of neighbouring predictions with the same fate as one
    # draw (conservative), and use the cluster-sample standard error.
    new_run = np.r_[True, (rows[1:] != rows[:-1]) | (positions[1:] != positions[:-1] + 1)
                    | (fate[1:] != fate[:-1])]
    run_lengths = np.diff(np.r_[np.flatnonzero(new_run), len(fate)])
    for value, expected in [(0, 0.8), (1, 0.1), (2, 0.1)]:
        observed = (fate == value).mean()
        stderr = np.sqrt(expected * (1 - expected) * (run_lengths ** 2).sum()) / len(fate)
        assert abs(observed - expected) < 4.5 * stderr, (strategy, value, observed, stderr)


def test_no_strategy_predicts_cls_or_sep(masked):
    _, dataset = masked
    rows, positions, labels, _ = predictions(dataset)
    special = [dataset.vocab['<cls>'], dataset.vocab['<sep>']]
    assert not np.isin(labels, special).any()
    assert (positions > 0).all() and (positions < dataset.valid_lens[rows] - 1).all()
    second_segment_start = np.argmax(dataset.all_segments == 1, axis=1)
    assert (positions != second_segment_start[rows] - 1).all()


def test_span_masking_predicts_contiguous_runs_token_masking_mostly_single_tokens(masked):
    strategy, dataset = masked
    rows, positions, _, _ = predictions(dataset)
    neighbours = ((rows[1:] == rows[:-1]) & (positions[1:] == positions[:-1] + 1)).mean()
    if strategy == 'span':
        assert neighbours > 0.5
    else:
        assert neighbours < 0.2


def test_whole_word_equals_token_masking_on_wikitext_word_tokens():
    token, whole_word = (load_wiki_dataset(32, embedded_slice_dir(), seed=2, masking=m,
                                           use_cache=False) for m in ('token', 'whole_word'))
    for a, b in zip(token.arrays, whole_word.arrays):
        np.testing.assert_array_equal(a, b)


WORDPIECES = ['un', '##believ', '##able', 'play', '##ing', 'the', 'cat', 'sat', 'on', 'mat']
WORDS = [['un', '##believ', '##able'], ['play', '##ing'], ['the'], ['cat'], ['sat'], ['on'],
         ['mat']]
# Unused fillers make a random replacement that happens to equal '<mask>' or the original rare.
VOCAB = Vocab(WORDPIECES + [f'filler{i}' for i in range(20_000)],
              reserved_tokens=RESERVED_TOKENS)


def wordpiece_example(rng):
    """'<cls>' + random words + '<sep>' + random words + '<sep>', and each word's positions."""
    tokens, words = ['<cls>'], []
    for segment_length in (rng.randint(3, 8), rng.randint(3, 8)):
        for word in rng.choices(WORDS, k=segment_length):
            words.append(list(range(len(tokens), len(tokens) + len(word))))
            tokens += word
        tokens.append('<sep>')
    return tokens, words


def masked_wordpiece_examples(strategy, count=300):
    """(original IDs, input IDs, predicted positions, each word's positions) of random
    WordPiece examples."""
    masker, rng = MLMMasker(VOCAB, strategy, random.Random(0)), random.Random(1)
    for _ in range(count):
        tokens, words = wordpiece_example(rng)
        inputs, positions, _ = masker(VOCAB[tokens])
        yield VOCAB[tokens], inputs, set(positions), words


def is_split(word, positions):
    return 0 < len(set(word) & positions) < len(word)


@pytest.mark.parametrize('strategy', ['whole_word', 'span'])
def test_wordpiece_continuations_are_predicted_with_their_word(strategy):
    for _, _, positions, words in masked_wordpiece_examples(strategy):
        assert not any(is_split(word, positions) for word in words)


def test_token_masking_does_split_wordpiece_words():
    assert any(is_split(word, positions)
               for _, _, positions, words in masked_wordpiece_examples('token')
               for word in words)


@pytest.mark.parametrize('strategy', ['whole_word', 'span'])
def test_a_predicted_word_is_replaced_as_one(strategy):
    def fate(original, new):
        return 'mask' if new == VOCAB['<mask>'] else 'keep' if new == original else 'random'
    fates = [{fate(originals[p], inputs[p]) for p in word}
             for originals, inputs, positions, words in masked_wordpiece_examples(strategy)
             for word in words if len(word) > 1 and word[0] in positions]
    assert len(fates) > 50
    assert all(len(word_fates) == 1 for word_fates in fates)
    assert {'mask', 'keep', 'random'} == set().union(*fates)


@pytest.mark.parametrize('strategy', MASKING_STRATEGIES)
def test_same_seed_same_masks_different_seed_different_masks(strategy):
    examples = [VOCAB[wordpiece_example(random.Random(i))[0]] for i in range(50)]

    def masks(seed):
        masker = MLMMasker(VOCAB, strategy, random.Random(seed))
        return [masker(example) for example in examples]
    assert masks(1) == masks(1)
    assert masks(1) != masks(2)


def test_unknown_strategy_is_rejected():
    with pytest.raises(ValueError, match="masking must be one of 'token', 'whole_word', 'span', "
                                         "got 'Span'"):
        MLMMasker(Vocab(), 'Span')


def test_the_default_config_is_d2ls_token_masking_at_15_percent_80_10_10():
    config = MaskingConfig()
    assert (config.rate, config.mask, config.random, config.strategy) == (0.15, 0.8, 0.1,
                                                                          'token')
    assert config.keep_threshold == 0.5  # d2l's second draw, exactly
    assert [config.max_predictions(n) for n in (5, 32, 64, 128)] == [1, 5, 10, 19]


def test_a_strategy_name_stands_for_the_default_config_with_that_strategy():
    assert MaskingConfig.of('span') == MaskingConfig(strategy='span')
    config = MaskingConfig(rate=0.3)
    assert MaskingConfig.of(config) is config


@pytest.mark.parametrize('rate', [0.3, 0.05])
def test_the_rate_sets_the_predictions_of_every_example_and_the_padded_slots(rate):
    dataset = load_wiki_dataset(64, embedded_slice_dir(), seed=0,
                                masking=MaskingConfig(rate=rate), use_cache=False)
    assert dataset.all_pred_positions.shape[1] == round(64 * rate)
    per_example = dataset.all_mlm_weights.sum(axis=1)
    np.testing.assert_array_equal(per_example,
                                  np.maximum(1, np.round(dataset.valid_lens * rate)))


def test_the_split_sets_how_predicted_tokens_are_replaced():
    all_masks = load_wiki_dataset(32, embedded_slice_dir(), seed=0, use_cache=False,
                                  masking=MaskingConfig(mask=1.0, random=0.0))
    _, _, _, inputs = predictions(all_masks)
    assert (inputs == all_masks.vocab['<mask>']).all()
    all_kept = load_wiki_dataset(32, embedded_slice_dir(), seed=0, use_cache=False,
                                 masking=MaskingConfig(mask=0.0, random=0.0))
    _, _, labels, inputs = predictions(all_kept)
    np.testing.assert_array_equal(inputs, labels)


def test_synthetic_batches_pad_predictions_as_the_config_says():
    batch = synthetic_pretraining_batch(0, 4, vocab_size=100, max_len=40,
                                        masking=MaskingConfig(rate=0.25))
    assert batch[3].shape == (4, 10)
    assert synthetic_pretraining_batch(0, 4, vocab_size=100, max_len=40)[3].shape == (4, 6)


@pytest.mark.parametrize('options, message', [
    (dict(rate=0.0), r'masking rate=0.0; expected a share in \(0, 1\]'),
    (dict(rate=1.5), r'masking rate=1.5'),
    (dict(mask=-0.1), r'masking mask=-0.1; expected a share in \[0, 1\]'),
    (dict(mask=0.8, random=0.3), r'mask=0.8 \+ random=0.3 exceeds 1'),
    (dict(strategy='words'), r"masking must be one of 'token', 'whole_word', 'span', "
                             r"got 'words'"),
])
def test_bad_masking_configs_are_rejected_naming_the_knob(options, message):
    with pytest.raises(ValueError, match=message):
        MaskingConfig(**options)
