"""gluonbert.data.Vocab and get_tokens_and_segments against d2l 1.0.3's own."""
import json

import numpy as np
import pytest

import d2l.mxnet as d2l
from gluonbert.data import Vocab, get_tokens_and_segments

SENTENCES = [['the', 'cat', 'sat', 'on', 'the', 'mat'], ['the', 'dog', 'sat'], [],
             ['a', 'cat', 'and', 'a', 'dog', '<unk>']]
RESERVED = ['<pad>', '<mask>', '<cls>', '<sep>']


@pytest.mark.parametrize('tokens, min_freq', [
    (SENTENCES, 0), (SENTENCES, 2), ([t for s in SENTENCES for t in s], 1), ([], 0)])
def test_vocab_equals_d2l_vocab(tokens, min_freq):
    ours = Vocab(tokens, min_freq=min_freq, reserved_tokens=RESERVED)
    ref = d2l.Vocab(tokens, min_freq=min_freq, reserved_tokens=RESERVED)
    assert ours.idx_to_token == ref.idx_to_token
    assert ours.token_to_idx == ref.token_to_idx
    assert ours.token_freqs == ref.token_freqs
    assert len(ours) == len(ref) and ours.unk == ref.unk


def test_vocab_lookup_equals_d2l_for_a_token_a_list_and_nested_lists():
    ours, ref = Vocab(SENTENCES, min_freq=2), d2l.Vocab(SENTENCES, min_freq=2)
    for query in ['cat', 'zebra', ['the', 'zebra', 'dog'], ('a', 'sat'), [['cat'], ['mat']]]:
        assert ours[query] == ref[query]
    assert ours.to_tokens([0, 2, 1]) == ref.to_tokens([0, 2, 1])
    assert ours.to_tokens(3) == ref.to_tokens(3)


def test_to_indices_gives_int32_array_with_unk_for_unknown_tokens():
    vocab = Vocab(SENTENCES, min_freq=2)
    indices = vocab.to_indices(['the', 'zebra', 'dog'])
    assert indices.dtype == np.int32
    assert indices.tolist() == vocab[['the', 'zebra', 'dog']]
    assert indices[1] == vocab.unk
    assert vocab.to_indices(iter([])).shape == (0,)


def test_save_json_writes_d2l_vocab_json_layout(tmp_path):
    vocab = Vocab(SENTENCES, reserved_tokens=RESERVED)
    vocab.save_json(tmp_path / 'vocab.json')
    assert json.loads((tmp_path / 'vocab.json').read_text(encoding='utf-8')) == vocab.idx_to_token


def test_from_json_keeps_the_file_order_of_indices(tmp_path):
    idx_to_token = ['<unk>', 'zebra', '<pad>', 'ant', 'é']  # not sorted, as a foreign vocab.json
    (tmp_path / 'vocab.json').write_text(json.dumps(idx_to_token), encoding='utf-8')
    vocab = Vocab.from_json(tmp_path / 'vocab.json')
    assert vocab.idx_to_token == idx_to_token
    assert vocab[['zebra', 'é', 'lion']] == [1, 4, 0]


def test_from_json_round_trips_save_json(tmp_path):
    vocab = Vocab(SENTENCES, reserved_tokens=RESERVED)
    vocab.save_json(tmp_path / 'vocab.json')
    loaded = Vocab.from_json(tmp_path / 'vocab.json')
    assert loaded.idx_to_token == vocab.idx_to_token
    assert loaded.token_to_idx == vocab.token_to_idx


@pytest.mark.parametrize('content, message', [
    ('{"<unk>": 0}', 'expected a JSON list of token strings, got dict'),
    ('["<unk>", 3]', 'expected a JSON list of token strings'),
    ('["a", "b"]', '"<unk>" absent'),
    ('["<unk>", "a", "a"]', '3 tokens, 2 unique')])
def test_from_json_rejects_what_is_not_a_vocab_list(tmp_path, content, message):
    (tmp_path / 'vocab.json').write_text(content, encoding='utf-8')
    with pytest.raises(ValueError, match='vocab.json') as error:
        Vocab.from_json(tmp_path / 'vocab.json')
    assert message in str(error.value)


@pytest.mark.parametrize('tokens_b', [None, ['c', 'd', 'e'], []])
def test_get_tokens_and_segments_equals_d2l(tokens_b):
    assert (get_tokens_and_segments(['a', 'b'], tokens_b)
            == d2l.get_tokens_and_segments(['a', 'b'], tokens_b))
