"""Fine-tuned task models out to HF task folders (``export --to hf``) and HF task folders in
(``evaluate``/``predict``/``export --model``), checked against ``transformers`` itself in
``bench/.venv-torch`` (those tests skip without it); the tokenizer and the bad inputs need
only ``.venv``."""
import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import init
from tokenizers import Tokenizer

import gluonbert
from gluonbert import cli, compat
from gluonbert.data.tokenization import WhitespaceTokenizer
from gluonbert.data.wordpiece import WordPieceTokenizer, vocab_from_bert_tokens
from gluonbert.tasks import get_task
from gluonbert.tasks.saved import load_task_model, save_task_model

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('torch_env', ROOT / 'bench' / 'torch_env.py')
torch_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(torch_env)  # only reads paths: never creates the environment
requires_torch = pytest.mark.skipif(
    not os.path.exists(torch_env.DONE),
    reason=f'{torch_env.DONE} not found: bench/.venv-torch (torch + transformers, made by the '
           f'bench scripts, see bench/torch_env.py) is not installed')

BERT_TOKENS = (['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] +
               ['the', 'cat', 'sat', 'on', 'mat', 'dog', 'run', '##s', '##ing', '##ed', 'a', '.',
                ',', '!', '?', 'un', '##aff', '##able', 'cafe', 'café', 'Cat', 'The', '日', '本',
                'paris', 'mike', 'flew', 'to', 'who', 'built', 'it', 'x', '##y'])
VOCAB = vocab_from_bert_tokens(BERT_TOKENS)
SENTENCES = ['The cat sat on the mat!', 'Unaffable dogs running, café?', 'Cat\tcafe  日本 xyy',
             'who built it ? mike flew to paris .', 'The Dog runs.\x00']
MAX_LEN = 16
LABELS = {'classification': ['contradiction', 'entailment', 'neutral'], 'regression': None,
          'token-classification': ['B-LOC', 'I-LOC', 'O'], 'question-answering': None,
          'multiple-choice': None}
ARCHITECTURES = {'classification': 'BertForSequenceClassification',
                 'regression': 'BertForSequenceClassification',
                 'token-classification': 'BertForTokenClassification',
                 'question-answering': 'BertForQuestionAnswering',
                 'multiple-choice': 'BertForMultipleChoice'}


def randomized(block, seed):
    """Every parameter of ``block`` drawn afresh (LayerNorm scales around 1), so that a
    tensor in the wrong place changes the outputs."""
    rng = np.random.default_rng(seed)
    for name, param in compat.structural_parameters(block).items():
        values = 0.3 * rng.standard_normal(param.shape) + name.endswith('gamma')
        param.set_data(mx.nd.array(values.astype(np.float32)))
    return block


def task_model(folder, task_name, *, tokenizer=None, seed=0, **bert_options):
    """A tiny random fine-tuned task folder, saved as `gluonbert finetune` saves one."""
    mx.random.seed(seed)
    options = dict(activation='gelu', embedding_layer_norm=True, layer_norm_eps=1e-12)
    options.update(bert_options)
    bert = gluonbert.BERTModel(len(VOCAB), 32, 64, 4, 2, 0.0, max_len=24, **options)
    bert.initialize(init.Xavier())
    task = get_task(task_name)
    task.fit_to(MAX_LEN)
    net = task.head(bert, LABELS[task_name])
    net.output.initialize(init.Xavier())
    randomized(net, seed)
    save_task_model(net, bert, VOCAB, tokenizer or WordPieceTokenizer(VOCAB), folder, task,
                    LABELS[task_name], MAX_LEN)
    return folder


def fixed_inputs(task_name):
    """``(tokens, segments, valid_lens)`` of two sequences (multiple choice: three choices
    each), the second padded."""
    rng = np.random.default_rng(1)
    shape = (2, 3, 12) if task_name == 'multiple-choice' else (2, 12)
    tokens = rng.integers(5, len(VOCAB), shape)
    tokens[..., 0] = VOCAB['<cls>']
    segments = np.broadcast_to((np.arange(12) >= 6).astype(np.int64), shape).copy()
    valid_lens = np.full(shape[:-1], 12)
    valid_lens[1] = 8
    tokens[np.arange(12) >= valid_lens[..., None]] = VOCAB['<pad>']
    return tokens, segments, valid_lens


def gluonbert_outputs(net, inputs):
    outputs = net(tuple(mx.nd.array(a) for a in inputs))
    if isinstance(outputs, (list, tuple)):
        return [o.asnumpy() for o in outputs]
    return [outputs.asnumpy()]


TORCH_SCRIPT = r'''
import json, sys, warnings
import torch, transformers
torch.manual_seed(0)
job = json.load(open(sys.argv[1]))
results = {}
for name, item in job['exported'].items():
    config = transformers.AutoConfig.from_pretrained(item['folder'])
    auto = {'BertForSequenceClassification': 'AutoModelForSequenceClassification',
            'BertForTokenClassification': 'AutoModelForTokenClassification',
            'BertForQuestionAnswering': 'AutoModelForQuestionAnswering',
            'BertForMultipleChoice': 'AutoModelForMultipleChoice'}[config.architectures[0]]
    model, info = getattr(transformers, auto).from_pretrained(item['folder'],
                                                              output_loading_info=True)
    model.eval()
    tokens, segments, lens = (torch.tensor(a) for a in item['inputs'])
    mask = (torch.arange(tokens.shape[-1]) < lens.unsqueeze(-1)).long()
    with torch.no_grad():
        out = model(input_ids=tokens, token_type_ids=segments, attention_mask=mask)
    logits = [out.start_logits, out.end_logits] if hasattr(out, 'start_logits') else [out.logits]
    tokenizer = transformers.AutoTokenizer.from_pretrained(item['folder'])
    results[name] = dict(
        cls=type(model).__name__, logits=[x.tolist() for x in logits],
        missing=list(info['missing_keys']), unexpected=list(info['unexpected_keys']),
        num_labels=model.config.num_labels, id2label=model.config.id2label,
        problem_type=model.config.problem_type,
        ids=[tokenizer(s)['input_ids'] for s in job['sentences']],
        pair_ids=tokenizer(job['sentences'][0], job['sentences'][1])['input_ids'])
made = {}
for name, item in job['made'].items():
    config = transformers.BertConfig(
        vocab_size=item['vocab_size'], hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=24, id2label=dict(enumerate(item['labels'])),
        **item['config'])
    model = getattr(transformers, item['architecture'])(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    model.eval()
    model.save_pretrained(item['folder'])
    tokenizer = transformers.BertTokenizer(vocab=item['vocab'], do_lower_case=False,
                                           strip_accents=False, model_max_length=16)
    tokenizer.save_pretrained(item['folder'])
    encoded = tokenizer(job['sentences'], padding=True, return_tensors='pt')
    with torch.no_grad():
        logits = model(**encoded).logits
    made[name] = dict(logits=logits.tolist(), input_ids=encoded['input_ids'].tolist(),
                      token_type_ids=encoded['token_type_ids'].tolist(),
                      attention_mask=encoded['attention_mask'].tolist())
print(json.dumps({'exported': results, 'made': made}))
'''


def run_torch(tmp_path, job):
    path = tmp_path / 'job.json'
    path.write_text(json.dumps(job))
    done = subprocess.run([torch_env.PYTHON, '-c', TORCH_SCRIPT, str(path)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def export_hf(model, out):
    return cli.main(['export', '--to', 'hf', '--model', str(model), '--out', str(out)])


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """``{task: (task folder, HF folder)}`` for every head, exported by the command line."""
    root = tmp_path_factory.mktemp('hf_tasks')
    folders = {}
    for seed, name in enumerate(LABELS):
        model = task_model(root / name, name, seed=seed)
        assert export_hf(model, root / f'{name}-hf') == 0
        folders[name] = (model, root / f'{name}-hf')
    return folders


@pytest.fixture(scope='module')
def transformers_run(exported, tmp_path_factory):
    """What transformers makes of the exported folders, and the folders it made itself."""
    if not os.path.exists(torch_env.DONE):
        pytest.skip(f'{torch_env.DONE} not found: bench/.venv-torch is not installed')
    tmp = tmp_path_factory.mktemp('transformers')
    (tmp / 'vocab.txt').write_text('\n'.join(BERT_TOKENS) + '\n')
    job = {'sentences': SENTENCES, 'exported': {}, 'made': {}}
    for name, (_, hf) in exported.items():
        job['exported'][name] = {'folder': str(hf),
                                 'inputs': [a.tolist() for a in fixed_inputs(name)]}
    for name, architecture, labels, config in (
            ('sequence', 'BertForSequenceClassification', ['neg', 'pos', 'mixed'], {}),
            ('regression', 'BertForSequenceClassification', ['LABEL_0'], {}),
            ('tokens', 'BertForTokenClassification', ['O', 'B-PER', 'I-PER', 'B-LOC'], {})):
        job['made'][name] = dict(folder=str(tmp / name), architecture=architecture,
                                 labels=labels, config=config, vocab=str(tmp / 'vocab.txt'),
                                 vocab_size=len(BERT_TOKENS))
    result = run_torch(tmp, job)
    for name, item in job['made'].items():  # as transformers saved them: tokenizer.json only
        result['made'][name]['folder'] = item['folder']
    return result


@requires_torch
@pytest.mark.parametrize('task_name', list(LABELS))
def test_transformers_loads_the_export_with_the_same_outputs(exported, transformers_run,
                                                            task_name):
    model, _ = exported[task_name]
    hf = transformers_run['exported'][task_name]
    assert hf['cls'] == ARCHITECTURES[task_name]
    assert hf['missing'] == [] and hf['unexpected'] == []
    net, *_ = load_task_model(model)
    inputs = fixed_inputs(task_name)
    ours = gluonbert_outputs(net, inputs)
    assert len(ours) == len(hf['logits'])
    for mine, theirs in zip(ours, hf['logits']):
        theirs = np.array(theirs, dtype=np.float32).reshape(mine.shape)
        if task_name in ('question-answering', 'token-classification'):
            # At padding gluonbert masks the span logits and encodes nothing (packed tokens)
            valid = np.arange(mine.shape[1]) < inputs[2][:, None]
            mine, theirs = mine[valid], theirs[valid]
        assert np.abs(mine - theirs).max() < 1e-4


@requires_torch
def test_transformers_reads_the_labels_and_problem_type(transformers_run):
    hf = transformers_run['exported']
    assert hf['classification']['id2label'] == {str(i): name for i, name in
                                                enumerate(LABELS['classification'])}
    assert hf['classification']['problem_type'] == 'single_label_classification'
    assert (hf['regression']['num_labels'], hf['regression']['problem_type']) == \
        (1, 'regression')
    assert hf['token-classification']['id2label'] == {
        str(i): name for i, name in enumerate(LABELS['token-classification'])}
    assert hf['question-answering']['num_labels'] == 2


@requires_torch
def test_transformers_tokenizes_the_export_as_gluonbert(exported, transformers_run):
    tokenizer = WordPieceTokenizer(VOCAB)
    hf = transformers_run['exported']['classification']
    for sentence, ids in zip(SENTENCES, hf['ids']):
        assert ids == VOCAB.to_indices(['<cls>'] + tokenizer(sentence) + ['<sep>']).tolist()
    assert hf['pair_ids'] == VOCAB.to_indices(
        ['<cls>'] + tokenizer(SENTENCES[0]) + ['<sep>'] + tokenizer(SENTENCES[1]) +
        ['<sep>']).tolist()


def test_the_export_has_the_architecture_labels_and_hf_files(exported):
    for name, (_, hf) in exported.items():
        config = json.loads((hf / 'config.json').read_text())
        assert config['architectures'] == [ARCHITECTURES[name]]
        assert sorted(os.listdir(hf)) == ['config.json', 'model.safetensors', 'tokenizer.json',
                                          'tokenizer_config.json', 'vocab.txt']
    config = json.loads((exported['classification'][1] / 'config.json').read_text())
    assert config['label2id'] == {'contradiction': 0, 'entailment': 1, 'neutral': 2}
    assert config['problem_type'] == 'single_label_classification'
    config = json.loads((exported['regression'][1] / 'config.json').read_text())
    assert (len(config['id2label']), config['problem_type']) == (1, 'regression')
    assert (exported['question-answering'][1] / 'vocab.txt').read_text().split('\n')[:3] == \
        ['[PAD]', '[UNK]', '[CLS]']


@pytest.mark.parametrize('settings', [
    {}, {'lower': False}, {'lower': True, 'strip_accents': False},
    {'lower': False, 'strip_accents': True, 'tokenize_chinese_chars': False},
    {'max_input_chars_per_word': 4}])
def test_hf_tokenizer_json_gives_gluonbert_ids(tmp_path, settings):
    tokenizer = WordPieceTokenizer(VOCAB, **settings)
    model = task_model(tmp_path / 'm', 'classification', tokenizer=tokenizer)
    assert export_hf(model, tmp_path / 'hf') == 0
    hf = Tokenizer.from_file(str(tmp_path / 'hf' / 'tokenizer.json'))
    for sentence in SENTENCES:
        expected = VOCAB.to_indices(['<cls>'] + tokenizer(sentence) + ['<sep>']).tolist()
        assert hf.encode(sentence).ids == expected
    pair = hf.encode(SENTENCES[0], SENTENCES[2])
    tokens_a, tokens_b = tokenizer(SENTENCES[0]), tokenizer(SENTENCES[2])
    assert pair.ids == VOCAB.to_indices(['<cls>'] + tokens_a + ['<sep>'] + tokens_b +
                                        ['<sep>']).tolist()
    assert pair.type_ids == [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
    config = json.loads((tmp_path / 'hf' / 'tokenizer_config.json').read_text())
    assert (config['do_lower_case'], config['strip_accents'], config['model_max_length']) == \
        (tokenizer.lower, tokenizer.strip_accents, MAX_LEN)


def test_save_hf_pretrained_writes_hf_tokenizer_json_too(tmp_path):
    bert = gluonbert.BERTModel(len(VOCAB), 16, 32, 2, 1, 0.0, max_len=24, activation='gelu',
                               embedding_layer_norm=True, layer_norm_eps=1e-12)
    bert.initialize(init.Xavier())
    tokenizer = WordPieceTokenizer(VOCAB, lower=False)
    gluonbert.save_hf_pretrained(bert, VOCAB, tmp_path / 'hf', tokenizer=tokenizer)
    hf = Tokenizer.from_file(str(tmp_path / 'hf' / 'tokenizer.json'))
    for sentence in SENTENCES:
        assert hf.encode(sentence).ids == \
            VOCAB.to_indices(['<cls>'] + tokenizer(sentence) + ['<sep>']).tolist()


def test_the_export_loads_back_as_the_same_task_model(exported):
    for name, (model, hf) in exported.items():
        net, task, vocab, tokenizer, config = load_task_model(model)
        back, back_task, back_vocab, back_tokenizer, back_config = load_task_model(hf)
        assert (back_task.name, back_task.settings()) == (task.name, task.settings())
        assert (back_config['labels'], back_config['max_len']) == (config['labels'], MAX_LEN)
        assert back_vocab.idx_to_token == vocab.idx_to_token
        assert back_tokenizer(SENTENCES[1]) == tokenizer(SENTENCES[1])
        inputs = fixed_inputs(name)
        for mine, theirs in zip(gluonbert_outputs(net, inputs), gluonbert_outputs(back, inputs)):
            assert np.abs(mine - theirs).max() < 1e-6


def hf_inputs(made):
    ids = np.array(made['input_ids'])
    return ids, np.array(made['token_type_ids']), np.array(made['attention_mask']).sum(axis=1)


@requires_torch
@pytest.mark.parametrize('name, task_name', [('sequence', 'classification'),
                                             ('regression', 'regression'),
                                             ('tokens', 'token-classification')])
def test_a_transformers_folder_loads_with_the_same_outputs(transformers_run, name, task_name):
    made = transformers_run['made'][name]
    net, task, vocab, tokenizer, config = load_task_model(made['folder'])
    assert task.name == task_name
    inputs = hf_inputs(made)
    for sentence, ids, length in zip(SENTENCES, inputs[0], inputs[2]):  # HF's tokenizer's ids
        assert ids[:length].tolist() == vocab.to_indices(
            ['<cls>'] + tokenizer(sentence) + ['<sep>']).tolist()
    ours = gluonbert_outputs(net, inputs)[0]
    theirs = np.array(made['logits'], dtype=np.float32).reshape(ours.shape)
    if task_name == 'token-classification':
        valid = np.arange(ours.shape[1]) < inputs[2][:, None]
        ours, theirs = ours[valid], theirs[valid]
    assert np.abs(ours - theirs).max() < 1e-4
    assert config['max_len'] == 16  # the tokenizer's model_max_length


@requires_torch
def test_predict_on_a_transformers_folder_prints_transformers_predictions(
        transformers_run, tmp_path, capsys):
    made = transformers_run['made']['sequence']
    labels = ['neg', 'pos', 'mixed']
    expected = [labels[i] for i in np.array(made['logits']).argmax(axis=1)]
    lines = tmp_path / 'lines.txt'
    lines.write_text('\n'.join(SENTENCES) + '\n')
    capsys.readouterr()
    assert cli.main(['predict', '--model', made['folder'], str(lines)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0] == 'label\tp_neg\tp_pos\tp_mixed'
    assert [line.split('\t')[0] for line in printed[1:]] == expected
    test = tmp_path / 'test.tsv'
    test.write_text('sentence\tlabel\n' + ''.join(f'{s.replace(chr(9), " ")}\t{label}\n'
                                                  for s, label in zip(SENTENCES, expected)))
    assert cli.main(['evaluate', '--model', made['folder'], '--test', str(test)]) == 0
    assert 'accuracy 1.0000' in capsys.readouterr().out


@requires_torch
def test_a_transformers_folder_exports_to_onnx(transformers_run, tmp_path):
    made = transformers_run['made']['tokens']
    assert cli.main(['export', '--model', made['folder'], '--out', str(tmp_path / 'onnx')]) == 0
    assert (tmp_path / 'onnx' / 'model.onnx').is_file()


def edited_copy(folder, tmp_path, edit):
    """A copy of the HF folder ``folder`` with ``edit`` applied to its config.json."""
    copy = tmp_path / 'edited'
    copy.mkdir()
    for file in os.listdir(folder):
        (copy / file).write_bytes((folder / file).read_bytes())
    config = json.loads((copy / 'config.json').read_text())
    edit(config)
    (copy / 'config.json').write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize('edit, message', [
    (lambda c: c.update(problem_type='multi_label_classification'),
     "problem_type='multi_label_classification'; gluonbert's tasks are"),
    (lambda c: c.update(architectures=['BertForPreTraining']),
     "architectures=['BertForPreTraining'] (a pretrained model: fine-tune it"),
    (lambda c: c.update(id2label={'0': 'a', '2': 'b'}), 'id2label ids [0, 2]; expected 0 to 1'),
    (lambda c: c['gluonbert_task'].update(max_len=99), 'max_len=99; expected an integer in'),
])
def test_an_hf_folder_gluonbert_cannot_serve_is_refused_by_name(exported, tmp_path, edit,
                                                                 message):
    folder = edited_copy(exported['classification'][1], tmp_path, edit)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_task_model(folder)


def refused(capsys, argv):
    capsys.readouterr()
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err
    return err


def test_a_d2l_architecture_model_is_refused_and_nothing_written(tmp_path, capsys):
    model = task_model(tmp_path / 'd2l', 'classification', activation='relu',
                       embedding_layer_norm=False, layer_norm_eps=1e-5)
    err = refused(capsys, ['export', '--to', 'hf', '--model', str(model),
                           '--out', str(tmp_path / 'out' / 'hf')])
    assert 'embedding_layer_norm=False has no HF BERT equivalent' in err
    assert not (tmp_path / 'out').exists()


def test_a_whitespace_tokenizer_model_is_refused_and_nothing_written(tmp_path, capsys):
    model = task_model(tmp_path / 'ws', 'classification', tokenizer=WhitespaceTokenizer())
    err = refused(capsys, ['export', '--to', 'hf', '--model', str(model),
                           '--out', str(tmp_path / 'hf')])
    assert "tokenizer is gluonbert's 'whitespace' tokenizer" in err
    assert not (tmp_path / 'hf').exists()


def test_an_out_folder_of_other_files_is_refused_and_kept(exported, tmp_path, capsys):
    out = tmp_path / 'notes'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    err = refused(capsys, ['export', '--to', 'hf', '--model',
                           str(exported['classification'][0]), '--out', str(out)])
    assert 'is not a HF BERT folder (holds notes.txt)' in err
    assert os.listdir(out) == ['notes.txt']


def test_onnx_only_options_with_to_hf_are_refused(exported, tmp_path, capsys):
    err = refused(capsys, ['export', '--to', 'hf', '--int8', '--model',
                           str(exported['classification'][0]), '--out', str(tmp_path / 'hf')])
    assert '--int8 applies to --to onnx' in err
    assert not (tmp_path / 'hf').exists()


def test_a_previous_hf_export_is_replaced(exported, tmp_path):
    model, _ = exported['regression']
    assert export_hf(model, tmp_path / 'hf') == 0
    assert export_hf(exported['classification'][0], tmp_path / 'hf') == 0
    config = json.loads((tmp_path / 'hf' / 'config.json').read_text())
    assert config['problem_type'] == 'single_label_classification'
