"""`gluonbert finetune` on question-answering and multiple-choice files written here, then
evaluate, export and serve the result as a user would (subprocesses): export/predict.py
(onnxruntime) and `gluonbert predict` (MXNet) give the answers and picks of MXNet evaluation,
windowed with the settings the model was trained with."""
import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import init

import gluonbert
from gluonbert.tasks import get_task
from gluonbert.tasks.saved import load_task_model
from gluonbert.tasks.serving import examples_from_lines, read_lines

ROOT = Path(__file__).resolve().parents[1]
NAMES = 'john mary anna peter lucy tom'.split()
CITIES = 'paris london rome berlin oslo madrid'.split()
FILLER = 'the weather was fine and the days were long .'.split()
WORDS = NAMES + CITIES + FILLER + 'where does live lives in ? who'.split()
MAX_LEN = 32
QA_SETTINGS = {'doc_stride': 6, 'max_query_len': 8, 'max_answer_len': 3}


THIS_CHECKOUT = dict(os.environ, PYTHONPATH=str(ROOT))  # not another gluonbert installed


def gluonbert_cli(*args, stdin=None):
    return subprocess.run([sys.executable, '-m', 'gluonbert', *map(str, args)],
                          capture_output=True, text=True, input=stdin, timeout=600,
                          env=THIS_CHECKOUT)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """A tiny randomly initialised gluonbert folder whose vocabulary covers the files."""
    folder = tmp_path_factory.mktemp('pretrained') / 'bert'
    vocab = gluonbert.Vocab(WORDS, reserved_tokens=['<pad>', '<cls>', '<sep>', '<mask>'])
    mx.random.seed(0)
    bert = gluonbert.BERTModel(len(vocab), 32, 64, 2, 1, 0.1, max_len=MAX_LEN)
    bert.initialize(init.Xavier())
    gluonbert.save_pretrained(bert, vocab, folder, config=bert.config)
    return folder


def story(rng):
    """A context of who lives where, with filler between: several windows long."""
    people = rng.sample(NAMES, 4)
    sentences = [f'{name} lives in {rng.choice(CITIES)} .' for name in people]
    for _ in range(2):
        sentences.insert(rng.randint(0, len(sentences)), ' '.join(FILLER))
    return people, ' '.join(sentences)


def squad_file(path, rng, count):
    """``count`` questions, "where does NAME live ?", over contexts of several windows."""
    paragraphs = []
    for number in range(count):
        people, context = story(rng)
        name = rng.choice(people)
        sentence = context.index(f'{name} lives in ')
        start = sentence + len(f'{name} lives in ')
        city = context[start:].split()[0]
        paragraphs.append({'context': context, 'qas': [{
            'id': f'{path.stem}-{number}', 'question': f'where does {name} live ?',
            'answers': [{'text': city, 'answer_start': start}]}]})
    data = [{'title': f'{path.stem} {i}', 'paragraphs': paragraphs[i::4]} for i in range(4)]
    path.write_text(json.dumps({'version': '1.1', 'data': data}), encoding='utf-8')
    return path


def cosmos_file(path, rng, count):
    """Cosmos QA's columns: the context tells which of four cities a person lives in."""
    with open(path, 'w', encoding='utf-8', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['id', 'context', 'question', 'answer0', 'answer1', 'answer2',
                         'answer3', 'label'])
        for number in range(count):
            name, city = rng.choice(NAMES), rng.choice(CITIES)
            endings = rng.sample([c for c in CITIES if c != city], 3)
            label = rng.randrange(4)
            endings.insert(label, city)
            writer.writerow([f'{path.stem}-{number}', f'{name} lives in {city} .',
                             f'where does {name} live ?', *endings, label])
    return path


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('files')
    rng = random.Random(0)
    return {'question-answering': [squad_file(folder / f'{s}.json', rng, n)
                                   for s, n in (('train', 48), ('dev', 16), ('test', 16))],
            'multiple-choice': [cosmos_file(folder / f'{s}.csv', rng, n)
                                for s, n in (('train', 64), ('dev', 16), ('test', 16))]}


def served_lines(task, test_file):
    """The test file's examples as served input lines (without their answers)."""
    examples = task.read(str(test_file))
    if task.name == 'question-answering':
        return ''.join(f'{e.question}\t{e.context}\n' for e in examples)
    return ''.join('\t'.join([e.context, e.question] + e.endings) + '\n' for e in examples)


def mxnet_evaluation(model, lines):
    """``(examples, features, predictions)`` of the served lines: what evaluation predicts
    (``task.postprocess``), with the task and settings saved in ``model``."""
    net, task, vocab, tokenizer, config = load_task_model(model)
    examples = examples_from_lines(task, read_lines(lines.encode(), 'stdin'), 'stdin')
    features = task.encode(examples, tokenizer, vocab, config['max_len'], None)
    outputs = task.predict(net, features, [mx.cpu()])
    return examples, features, task.postprocess(outputs, features, examples)


def table(stdout):
    header, *rows = stdout.strip('\n').split('\n')
    return header.split('\t'), [row.split('\t') for row in rows]


@pytest.mark.slow
@pytest.mark.parametrize('task_name', ['question-answering', 'multiple-choice'])
def test_finetune_evaluate_export_and_serve(task_name, files, pretrained, tmp_path):
    train, dev, test = files[task_name]
    model = tmp_path / 'model'
    options = [f'--{k.replace("_", "-")}={v}' for k, v in QA_SETTINGS.items()] \
        if task_name == 'question-answering' else []
    trained = gluonbert_cli('finetune', '--pretrained', pretrained, '--task', task_name,
                            '--train', train, '--dev', dev, '--test', test, *options,
                            '--max-len', MAX_LEN, '--epochs', 2, '--batch-size', 16,
                            '--lr', 2e-3, '--out', model)
    assert trained.returncode == 0, trained.stderr
    losses = [r['loss'] for r in json.loads(
        (tmp_path / 'model.checkpoints' / 'metrics.json').read_text()) if r['kind'] == 'train']
    assert losses[-1] < losses[0]  # it learns
    settings = json.loads((model / 'config.json').read_text())['task_settings']
    if task_name == 'question-answering':
        assert settings == dict(QA_SETTINGS, articles=['a', 'an', 'the'])
    evaluated = gluonbert_cli('evaluate', '--model', model, '--test', test,
                              '--batch-size', 16)
    assert evaluated.returncode == 0, evaluated.stderr
    test_line = next(l for l in trained.stdout.splitlines() if l.startswith('test (best'))
    assert test_line.split(': ', 1)[1] in evaluated.stdout  # the same numbers
    exported = gluonbert_cli('export', '--model', model, '--data', test, '--out',
                             tmp_path / 'onnx')
    assert exported.returncode == 0, exported.stderr
    assert json.loads((tmp_path / 'onnx' / 'export.json').read_text())['task_settings'] == \
        settings

    lines = served_lines(get_task(task_name), test)
    onnx = subprocess.run([sys.executable, str(ROOT / 'export' / 'predict.py'),
                           str(tmp_path / 'onnx'), '--batch-size', '5'], input=lines,
                          capture_output=True, text=True, env=THIS_CHECKOUT)
    assert onnx.returncode == 0, onnx.stderr
    local = gluonbert_cli('predict', '--model', model, '--batch-size', 5, stdin=lines)
    assert local.returncode == 0, local.stderr
    examples, features, expected = mxnet_evaluation(model, lines)
    onnx_header, onnx_rows = table(onnx.stdout)
    local_header, local_rows = table(local.stdout)
    assert onnx_header == local_header and len(onnx_rows) == len(local_rows) == len(examples)
    if task_name == 'question-answering':
        assert onnx_header == ['answer', 'probability', 'score', 'start_char', 'end_char']
        assert np.bincount(features.example_index).min() >= 3  # several windows each
        for rows in (onnx_rows, local_rows):
            assert [row[0] for row in rows] == expected
            assert [e.context[int(r[3]):int(r[4])] for e, r in zip(examples, rows)] == expected
    else:
        assert onnx_header == ['choice', 'p_0', 'p_1', 'p_2', 'p_3']
        for rows in (onnx_rows, local_rows):
            assert [int(row[0]) for row in rows] == expected
    np.testing.assert_allclose(np.array([r[1:3] for r in onnx_rows], float),
                               np.array([r[1:3] for r in local_rows], float), atol=1e-4)
