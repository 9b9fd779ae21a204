"""The jobs behind the command line: pretrain, fine-tune, evaluate, export and predict.

Each takes plain values (the parsed options), prints what it does, and returns its results,
so that scripts and tests can run them without the CLI.
"""
import contextlib
import os
import random
import sys

import mxnet as mx
from mxnet import gluon, init

from .data import load_data_wiki
from .data.nli import LABELS, SNLIBERTDataset, load_snli, locate_sick, read_sick
from .devices import parse_devices
from .metrics import confusion_matrix, format_confusion_matrix
from .model import BERTClassifier, BERTModel, hybridize_for_inference
from .progress import LossPlot, progress_bar
from .train.checkpoint import (load_classifier, load_pretrained_model, save_classifier,
                               save_pretrained)
from .train.finetune import predict, train_classifier
from .train.pretrain import train_bert
from .train.strategies import FGM, Plain, RDrop


def _seed(seed):
    random.seed(seed)
    mx.random.seed(seed)


def pretrain(opts, fallback=None):
    """Pretrain a BERT on WikiText-2 and save a d2l-style folder; returns ``train_bert``'s dict."""
    devices = parse_devices(opts.devices)
    _seed(opts.seed)
    train_iter, vocab = load_data_wiki(opts.batch_size, opts.max_len, opts.data_dir,
                                       seed=opts.seed, masking=opts.masking, fallback=fallback)
    print(f'data: {len(train_iter.dataset)} sentence pairs, vocabulary of {len(vocab)}')
    # d2l's default table of 1000 positions, as the chapter: --max-len only pads the data
    net = BERTModel(len(vocab), opts.num_hiddens, opts.ffn_num_hiddens, opts.num_heads,
                    opts.num_blks, opts.dropout, activation=opts.activation)
    net.initialize(init.Xavier(), ctx=devices)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': opts.lr})
    plot = LossPlot(('mlm', 'nsp'))
    with progress_bar(opts.steps, 'pretrain') as bar:
        def on_step(step, mlm, nsp):
            plot.add(step, mlm, nsp)
            bar.update(1)
            bar.set_postfix(mlm=f'{mlm:.3f}', nsp=f'{nsp:.3f}')
        result = train_bert(train_iter, net, gluon.loss.SoftmaxCELoss(), len(vocab), devices,
                            opts.steps, trainer=trainer, on_step=on_step, quiet=True)
    save_pretrained(net, vocab, opts.out, config=net.config, plot=plot)
    print(f'MLM loss {result["mlm_loss"]:.3f}, NSP loss {result["nsp_loss"]:.3f} (mean over '
          f'{opts.steps} steps); last tenth of the steps: MLM {result["final_mlm_loss"]:.3f}, '
          f'NSP {result["final_nsp_loss"]:.3f}')
    print(f'{result["pairs_per_sec"]:.1f} sentence pairs/sec on {devices}')
    print(f'saved {opts.out}/ (vocab.json, pretrained.params, config.json, loss.png)')
    return result


def load_nli(task, data_dir=None, fallback=None):
    """``(train, test)`` triples of an NLI task: 'snli' (dev for training, test for testing
    when only the InferSent files are here) or 'sick' (its TRAIN and TEST)."""
    if task == 'snli':
        return load_snli(data_dir, fallback=fallback)
    if task == 'sick':
        path = locate_sick(data_dir)
        return read_sick(path, 'TRAIN'), read_sick(path, 'TEST')
    raise ValueError(f"task={task!r}; expected 'snli' or 'sick'")


def _limit(triple, limit):
    return triple if not limit else tuple(column[:limit] for column in triple)


def _strategy(name, net):
    if name == 'rdrop':
        return RDrop(alpha=1.0)
    if name == 'fgm':
        return FGM(net.encoder.token_embedding.weight, epsilon=1.0)
    return Plain()


def _finetune_trainer(net, opts, steps_per_epoch):
    """``BERTTrainer`` with the options' knobs: optimizer, schedule, parameter groups,
    layer-wise decay, clipping, accumulation, freezing, stale-gradient policy."""
    import json
    from .train.trainer import BERTTrainer
    try:
        groups = json.loads(opts.groups) if opts.groups else None
    except json.JSONDecodeError as error:
        raise ValueError(f'--groups {opts.groups!r} is not JSON ({error}); expected e.g. '
                         '\'{"encoder|hidden": {"lr_mult": 0.1}}\'') from None
    updates = opts.epochs * -(-steps_per_epoch // opts.accumulate)
    return BERTTrainer(net, opts.optimizer, lr=opts.lr, wd=opts.weight_decay,
                       schedule=opts.schedule, warmup_steps=opts.warmup_steps,
                       num_training_steps=updates, groups=groups,
                       layerwise_decay=opts.layerwise_decay, freeze=opts.freeze,
                       clip=opts.clip, accumulate=opts.accumulate, stale=opts.stale,
                       seed=opts.seed, quiet=not opts.show_groups)


def finetune(opts, fallback=None):
    """Fine-tune a pretrained folder on an NLI task as the d2l chapter does; save the
    classifier, a loss/accuracy plot and print a confusion matrix. Returns the metrics."""
    devices = parse_devices(opts.devices)
    _seed(opts.seed)
    bert, vocab = load_pretrained_model(opts.pretrained, dropout=opts.dropout, devices=devices)
    source = f'pretrained {opts.pretrained}'
    if opts.max_len > bert.encoder.max_len:
        raise ValueError(f'--max-len {opts.max_len} exceeds the pretrained model\'s max_len '
                         f'{bert.encoder.max_len}')
    if opts.from_scratch:
        bert.initialize(init.Xavier(), ctx=devices, force_reinit=True)
        source = 'random initialisation (same architecture and vocab)'
    train, test = load_nli(opts.task, opts.data_dir, fallback)
    train, test = _limit(train, opts.train_limit), _limit(test, opts.test_limit)
    print(f'fine-tuning from {source} on {opts.task}: {len(train[0])} training and '
          f'{len(test[0])} test pairs')
    train_set = SNLIBERTDataset(train, opts.max_len, vocab)
    test_set = SNLIBERTDataset(test, opts.max_len, vocab)
    train_iter = gluon.data.DataLoader(train_set, opts.batch_size, shuffle=True)
    test_iter = gluon.data.DataLoader(test_set, opts.batch_size)
    net = BERTClassifier(bert, num_classes=len(LABELS))
    net.output.initialize(init.Xavier(), ctx=devices)
    trainer = _finetune_trainer(net, opts, steps_per_epoch=len(train_iter))
    plot = LossPlot(('train loss', 'train acc', 'test acc'))
    with progress_bar(opts.epochs, 'fine-tune (epochs)') as bar:
        def on_epoch(epoch, loss, train_acc, test_acc):
            plot.add(epoch, loss, train_acc, test_acc)
            bar.update(1)
            bar.set_postfix(loss=f'{loss:.3f}', test_acc=f'{test_acc:.3f}')
        result = train_classifier(net, train_iter, test_iter, gluon.loss.SoftmaxCELoss(),
                                  trainer, opts.epochs, devices,
                                  strategy=_strategy(opts.strategy, net), on_epoch=on_epoch,
                                  quiet=True)
    labels, predictions = predict(net, test_iter, devices)
    matrix = confusion_matrix(labels, predictions, len(LABELS))
    save_classifier(net, vocab, opts.out, LABELS, opts.max_len, plot=plot)
    print(f'loss {result["train_loss"]:.3f}, train acc {result["train_acc"]:.3f}, '
          f'test acc {result["test_acc"]:.3f}; {result["examples_per_sec"]:.1f} examples/sec '
          f'on {devices}')
    print(format_confusion_matrix(matrix, LABELS))
    print(f'saved {opts.out}/ (classifier.params, vocab.json, config.json, curves.png)')
    return dict(result, confusion_matrix=matrix.tolist())


def evaluate(opts, fallback=None):
    """Accuracy and confusion matrix of a fine-tuned folder on an NLI task's test split."""
    devices = parse_devices(opts.devices)
    net, vocab, config = load_classifier(opts.model, devices)
    _, test = load_nli(opts.task, opts.data_dir, fallback)
    test = _limit(test, opts.test_limit)
    test_iter = gluon.data.DataLoader(SNLIBERTDataset(test, config['max_len'], vocab),
                                      opts.batch_size)
    hybridize_for_inference(net, devices)
    labels, predictions = predict(net, test_iter, devices)
    matrix = confusion_matrix(labels, predictions, len(config['labels']))
    accuracy = float((labels == predictions).mean())
    print(f'test accuracy {accuracy:.3f} on {len(labels)} {opts.task} pairs')
    print(format_confusion_matrix(matrix, config['labels']))
    return dict(accuracy=accuracy, confusion_matrix=matrix.tolist())


def export(opts, fallback=None):
    """Export a fine-tuned folder to ONNX, verified under onnxruntime on random batches and on
    real test pairs; prints and returns the ``ExportReport``."""
    from .export import export_onnx
    net, vocab, config = load_classifier(opts.model)
    _, test = load_nli(opts.task, opts.data_dir, fallback)
    test_set = SNLIBERTDataset(_limit(test, 64), config['max_len'], vocab)
    examples = (test_set.all_token_ids, test_set.all_segments, test_set.valid_lens)
    report = export_onnx(net, opts.out, vocab, config['labels'], config['max_len'],
                         examples=examples, quantize=opts.int8, overwrite=True)
    print(report)
    return report


def predict_pairs(opts):
    """Labels and probabilities of sentence pairs (``premise<TAB>hypothesis`` lines) with a
    fine-tuned folder, tokenized as in training; printed as TSV."""
    net, vocab, config = load_classifier(opts.model)
    hybridize_for_inference(net)
    stream = sys.stdin if opts.pairs == '-' else open(opts.pairs, encoding='utf-8')
    with stream:
        rows = [line.rstrip('\n').split('\t') for line in stream if line.strip()]
    for number, row in enumerate(rows, 1):
        if len(row) != 2:
            raise ValueError(f'{opts.pairs}, pair {number}: expected premise<TAB>hypothesis, '
                             f'got {len(row)} field(s)')
    premises, hypotheses = zip(*rows) if rows else ((), ())
    with contextlib.redirect_stdout(sys.stderr):  # stdout is the TSV; the dataset's count goes aside
        dataset = SNLIBERTDataset((list(premises), list(hypotheses), [0] * len(rows)),
                                  config['max_len'], vocab)
    features = [mx.nd.array(a) for a in (dataset.all_token_ids, dataset.all_segments,
                                         dataset.valid_lens)]
    probabilities = mx.nd.softmax(net(tuple(features))).asnumpy() if rows else []
    print('\t'.join(['label'] + [f'p_{name}' for name in config['labels']]))  # as predict.py
    for p in probabilities:
        print(config['labels'][int(p.argmax())] + '\t' + '\t'.join(f'{v:.4f}' for v in p))
    return probabilities
