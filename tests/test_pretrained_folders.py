"""Fine-tuning starts from either kind of pretrained folder, with the tokenizer it was
trained with."""
import pytest
from mxnet import init

import gluonbert
from gluonbert.data.tokenization import WhitespaceTokenizer
from gluonbert.data.wordpiece import WordPieceTokenizer, vocab_from_bert_tokens
from gluonbert.pretrained.folders import load_pretrained_folder

SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']


def tiny(vocab_size, **options):
    bert = gluonbert.BERTModel(vocab_size, 16, 32, 2, 1, 0.0, max_len=16, **options)
    bert.initialize(init.Xavier())
    return bert


def test_hf_folder_comes_with_its_wordpiece_settings(tmp_path):
    vocab = vocab_from_bert_tokens(SPECIALS + ['Un', '##aff', '##able'])
    saved = WordPieceTokenizer(vocab, lower=False)
    bert = tiny(len(vocab), activation='gelu', embedding_layer_norm=True, layer_norm_eps=1e-12)
    gluonbert.save_hf_pretrained(bert, vocab, tmp_path / 'hf', tokenizer=saved)
    bert, loaded_vocab, tokenizer, kind = load_pretrained_folder(tmp_path / 'hf')
    assert kind == 'hf' and loaded_vocab.idx_to_token == vocab.idx_to_token
    assert isinstance(tokenizer, WordPieceTokenizer) and tokenizer.lower is False
    assert tokenizer('Unaffable') == ['Un', '##aff', '##able']


def test_gluonbert_folder_is_tokenized_as_d2l(tmp_path):
    vocab = gluonbert.Vocab(['a', 'b'], reserved_tokens=['<pad>', '<cls>', '<sep>', '<mask>'])
    bert = tiny(len(vocab))
    gluonbert.save_pretrained(bert, vocab, tmp_path / 'g', config=bert.config)
    _, _, tokenizer, kind = load_pretrained_folder(tmp_path / 'g')
    assert kind == 'gluonbert' and isinstance(tokenizer, WhitespaceTokenizer)
    assert tokenizer('A  B') == ['a', 'b']


def test_folder_of_neither_kind_names_what_each_holds(tmp_path):
    with pytest.raises(FileNotFoundError, match='neither a gluonbert folder .* nor an HF '
                                                'folder'):
        load_pretrained_folder(tmp_path)
