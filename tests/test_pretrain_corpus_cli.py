"""`gluonbert pretrain` on a corpus the test writes: learn a vocabulary, pretrain with
validation, resume to the same parameters, continue an HF folder with added tokens (saved as
gluonbert and HF folders), then fine-tune the result."""
import random
import shutil

import mxnet as mx
import numpy as np
import pytest

from gluonbert import BERTModel
from gluonbert.cli import main
from gluonbert.data.vocab import Vocab
from gluonbert.pretrained import from_pretrained, save_hf_pretrained
from gluonbert.pretrained.saved import load_pretrained_model
from test_data_corpus import write_corpus

SMALL = ['--num-hiddens', '32', '--ffn-num-hiddens', '64', '--num-heads', '2', '--num-blks',
         '1', '--max-len', '32', '--batch-size', '16', '--log-every', '2']


def params(folder):
    bert, vocab = load_pretrained_model(str(folder))
    return {name: p.data().asnumpy() for name, p in bert._collect_params_with_prefix().items()}


@pytest.mark.slow
def test_learn_vocab_pretrain_resume_continue_with_added_tokens_and_finetune(
        tmp_path, small_data_env, monkeypatch, capsys):
    for key in ('GLUONBERT_DATA', 'GLUONBERT_CACHE', 'GLUONBERT_NO_DOWNLOAD'):
        monkeypatch.setenv(key, small_data_env[key])
    corpus, domain = tmp_path / 'corpus.txt', tmp_path / 'domain.txt'
    write_corpus(corpus, 150, random.Random(0))
    write_corpus(domain, 60, random.Random(1))
    run = ['pretrain', '--corpus', str(corpus), '--learn-vocab', '120', *SMALL, '--steps', '6',
           '--checkpoint-every', '3', '--eval-every', '3', '--schedule', 'linear',
           '--warmup-steps', '2', '--min-lr', '1e-5', '--valid-fraction', '0.1']
    assert main(run + ['--out', str(tmp_path / 'a')]) == 0
    out = capsys.readouterr().out
    assert 'learned WordPiece vocabulary' in out and 'valid:' in out and 'perplexity' in out
    # Resume: the same run, stopped after update 3, continues to the same parameters
    assert main(run + ['--out', str(tmp_path / 'b')]) == 0
    shutil.rmtree(tmp_path / 'b.checkpoints' / 'step-00000006')
    assert main(run + ['--out', str(tmp_path / 'b'), '--resume']) == 0
    a, b = params(tmp_path / 'a'), params(tmp_path / 'b')
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    # Continued pretraining of an HF folder on a domain corpus, with added tokens
    _, vocab = load_pretrained_model(str(tmp_path / 'a'))
    mx.random.seed(0)
    hf_bert = BERTModel(len(vocab), 32, 64, 2, 1, 0.1, max_len=64, activation='gelu',
                        embedding_layer_norm=True, tie_mlm_decoder=True)
    hf_bert.initialize(mx.init.Normal(0.02))
    save_hf_pretrained(hf_bert, vocab, str(tmp_path / 'hf'))
    (tmp_path / 'add.txt').write_text('Quokka\nwombat\nriver\n', encoding='utf-8')
    assert main(['pretrain', '--corpus', f'{domain}:2', '--corpus', f'{corpus}:0.5',
                 '--pretrained', str(tmp_path / 'hf'), '--add-tokens', str(tmp_path / 'add.txt'),
                 *SMALL, '--steps', '3', '--out', str(tmp_path / 'c'),
                 '--save-hf', str(tmp_path / 'c-hf')]) == 0
    out = capsys.readouterr().out
    assert '2 tokens added' in out and 'kept' in out
    continued, grown = load_pretrained_model(str(tmp_path / 'c'))
    assert grown.idx_to_token[-2:] == ['quokka', 'wombat']
    assert continued.config['tie_mlm_decoder'] and continued.config['vocab_size'] == len(vocab) + 2
    reloaded, hf_vocab = from_pretrained(str(tmp_path / 'c-hf'))
    assert hf_vocab.idx_to_token == grown.idx_to_token
    np.testing.assert_array_equal(
        reloaded.encoder.token_embedding.weight.data().asnumpy(),
        continued.encoder.token_embedding.weight.data().asnumpy())
    # ... and fine-tune the result
    assert main(['finetune', '--pretrained', str(tmp_path / 'c'), '--epochs', '1',
                 '--batch-size', '16', '--max-len', '32', '--train-limit', '64',
                 '--test-limit', '32', '--out', str(tmp_path / 'ft'),
                 '--fallback', 'embedded']) == 0
    assert (tmp_path / 'ft' / 'model.params').is_file()


@pytest.mark.parametrize('argv, message', [
    (['--add-tokens', 'x.txt'], '--add-tokens needs --pretrained'),
    (['--corpus', 'nowhere.txt'], "corpus 'nowhere.txt' does not exist"),
    (['--corpus', 'c.txt:heavy'], "weight 'heavy' is not a positive number"),
])
def test_corpus_option_errors_are_one_line_with_status_2(argv, message, capsys, tmp_path,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'c.txt').write_text('One. Two.\n', encoding='utf-8')
    if '--add-tokens' in argv:
        argv = ['--corpus', 'c.txt'] + argv
    assert main(['pretrain', *argv, '--steps', '1']) == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err


def test_a_config_file_lists_several_corpora(tmp_path):
    from gluonbert.cli import parse_args
    config = tmp_path / 'run.toml'
    config.write_text('corpus = ["books/", "web.txt:0.5"]\nlearn_vocab = 30000\n',
                      encoding='utf-8')
    args = parse_args(['pretrain', '--config', str(config)])
    assert (args.corpus, args.learn_vocab) == (['books/', 'web.txt:0.5'], 30000)
    config.write_text('corpus = "books/"\n', encoding='utf-8')
    with pytest.raises(ValueError, match="option 'corpus' is 'books/'; expected a list"):
        parse_args(['pretrain', '--config', str(config)])


def test_a_whitespace_tokenized_gluonbert_folder_continues_with_added_tokens(tmp_path, capsys):
    corpus = tmp_path / 'corpus.txt'
    write_corpus(corpus, 60, random.Random(0))
    run = ['pretrain', '--corpus', str(corpus), *SMALL, '--steps', '1']
    assert main(run + ['--out', str(tmp_path / 'a')]) == 0
    # d2l's whitespace tokenizer, as a folder pretrained on WikiText-2 has
    (tmp_path / 'a' / 'tokenizer.json').write_text('{"kind": "whitespace", "lower": true}')
    (tmp_path / 'add.txt').write_text('Quokka\nwombat\n', encoding='utf-8')
    capsys.readouterr()
    assert main(run + ['--pretrained', str(tmp_path / 'a'), '--add-tokens',
                       str(tmp_path / 'add.txt'), '--out', str(tmp_path / 'b')]) == 0
    assert '2 tokens added' in capsys.readouterr().out
    _, vocab = load_pretrained_model(str(tmp_path / 'b'))
    assert vocab.idx_to_token[-2:] == ['quokka', 'wombat']  # d2l's tokenizer lower-cases
    (tmp_path / 'two.txt').write_text('two words\n', encoding='utf-8')
    assert main(run + ['--pretrained', str(tmp_path / 'a'), '--add-tokens',
                       str(tmp_path / 'two.txt'), '--out', str(tmp_path / 'c')]) == 2
    assert "added token 'two words' is split by the tokenizer into ['two', 'words']" in \
        capsys.readouterr().err
