"""The jobs behind the command line: pretrain, fine-tune, evaluate, export and predict.

Each takes plain values (the parsed options), prints what it does, and returns its results,
so that scripts and tests can run them without the CLI.
"""
import contextlib
import json
import os
import sys

import mxnet as mx
from mxnet import gluon, init

from . import runtime
from .atomic import atomic_write
from .data import load_wiki_dataset
from .data.nli import LABELS, SNLIBERTDataset, load_snli, locate_sick, read_sick
from .data.synthetic import SyntheticBatches
from .devices import parse_devices
from .distributed import create_kvstore
from .distributed.kvstore import is_distributed
from .distributed.watchdog import Heartbeat
from .metrics import confusion_matrix, format_confusion_matrix
from .model import BERTClassifier, BERTModel, hybridize_for_inference
from .progress import LossPlot
from .train.batches import EpochBatches
from .train.callbacks import (Checkpointing, Evaluation, LogLines, MetricsLog, ProgressBar,
                              StepTimes)
from .train.checkpoint import (load_classifier, load_pretrained_model, save_classifier,
                               save_pretrained)
from .train.engine import Engine
from .train.finetune import ClassificationLoss, evaluate_accuracy, predict
from .train.pretrain import PretrainingLoss, PretrainingObjective
from .train.seeding import seed_everything
from .train.strategies import FGM, RDrop
from .train.trainer import BERTTrainer


def _kvstore(opts):
    """The KVStore to train with: ``--kvstore``, else ``dist_sync`` under the launcher (which
    sets ``DMLC_ROLE``), else ``device``. A ``dist`` store is created (joining the job) here;
    a local one is left to the trainer by name, which skips it on one context."""
    kind = opts.kvstore or ('dist_sync' if os.environ.get('DMLC_ROLE') else 'device')
    return create_kvstore(kind, connect_timeout=opts.timeout) if is_distributed(kind) else kind


def _checkpoint_dir(opts):
    """``--checkpoint-dir``, else ``OUT.checkpoints`` beside the output folder (never inside
    it: the output folder is replaced whole when saved)."""
    return opts.checkpoint_dir or opts.out.rstrip('/') + '.checkpoints'


def _pretraining_data(opts, fallback):
    """``(batches, vocab, vocab_size)``: WikiText-2 in a seeded order, or ``--synthetic``
    batches (no vocabulary)."""
    if opts.synthetic:
        return (SyntheticBatches(opts.batch_size, vocab_size=opts.vocab_size,
                                 max_len=opts.max_len, seed=opts.seed), None, opts.vocab_size)
    dataset = load_wiki_dataset(opts.max_len, opts.data_dir, seed=opts.seed,
                                masking=opts.masking, fallback=fallback)
    print(f'data: {len(dataset)} sentence pairs, vocabulary of {len(dataset.vocab)}')
    batches = EpochBatches(dataset.arrays, opts.batch_size, shuffle=True, seed=opts.seed)
    return batches, dataset.vocab, len(dataset.vocab)


def pretrain(opts, fallback=None):
    """Pretrain a BERT (MLM + NSP) on one context, several, or as one worker of a job under
    the launcher; checkpoint every ``--checkpoint-every`` updates, resume with ``--resume``,
    and save a d2l-style folder (on the chief worker). Returns a summary dict."""
    devices = parse_devices(opts.devices)
    seed_everything(opts.seed)
    kvstore = _kvstore(opts)
    batches, vocab, vocab_size = _pretraining_data(opts, fallback)
    # d2l's BERTModel keeps its default table of 1000 positions and only the data is padded
    # to max_len, so that a pretrained model fine-tunes on longer sequences
    net = BERTModel(vocab_size, opts.num_hiddens, opts.ffn_num_hiddens, opts.num_heads,
                    opts.num_blks, opts.dropout, activation=opts.activation)
    net.initialize(init.Xavier(), ctx=devices)
    trainer = BERTTrainer(net, opts.optimizer, lr=opts.lr, wd=opts.weight_decay,
                          seed=opts.seed, kvstore=kvstore,
                          checkpoint_dir=_checkpoint_dir(opts), quiet=True)
    objective = PretrainingObjective(net, gluon.loss.SoftmaxCELoss(), vocab_size)
    objective.hybridize(static_alloc=True, static_shape=True)
    engine = Engine(PretrainingLoss(objective), trainer, devices)
    keys = ('mlm_loss', 'nsp_loss')
    timer = StepTimes()
    callbacks = [LogLines(opts.steps, keys), timer,
                 MetricsLog(_checkpoint_dir(opts), plot=keys),
                 Checkpointing(every=opts.checkpoint_every or None, at_epoch_end=False)]
    if engine.is_chief:
        if os.environ.get('DMLC_ROLE'):  # the command line left this line to the chief
            print(runtime.describe(), file=sys.stderr)
        callbacks.insert(0, ProgressBar(opts.steps, 'pretrain', keys))
        print(f'{engine.num_workers} worker(s) x {[str(d) for d in devices]}, kvstore '
              f'{engine.kvstore_type}, global batch {opts.batch_size}, {opts.steps} steps',
              flush=True)
    if engine.num_workers > 1:
        callbacks.append(Heartbeat(opts.timeout))
    state = engine.fit(batches, num_updates=opts.steps, log_every=opts.log_every,
                       callbacks=callbacks, resume=opts.resume)
    median = timer.median()
    summary = dict(num_workers=engine.num_workers, contexts=[str(d) for d in devices],
                   kvstore=engine.kvstore_type, batch_size=opts.batch_size,
                   steps=state.updates, step_seconds=timer.seconds,
                   median_step_seconds=median,
                   samples_per_sec=opts.batch_size / median if median else None,
                   logs=state.logs)
    if not engine.is_chief:
        return summary
    if vocab is not None:
        save_pretrained(net, vocab, opts.out, config=net.config)
        _plot(state.logs, keys, os.path.join(opts.out, 'loss.png'))
        print(f'saved {opts.out}/ (vocab.json, pretrained.params, config.json, loss.png)')
    if state.logs:
        last = state.logs[-1]
        print(f'MLM loss {last["mlm_loss"]:.3f}, NSP loss {last["nsp_loss"]:.3f} (mean over '
              f'steps {last["update"] - last["updates"] + 1}-{last["update"]})')
    if median:
        print(f'{summary["samples_per_sec"]:.1f} sentence pairs/sec (median step '
              f'{median:.3f} s, first step left out)', flush=True)
    if opts.summary:
        atomic_write(opts.summary, lambda tmp: _write_json(tmp, summary))
    return summary


def _plot(logs, keys, path):
    plot = LossPlot(keys)
    for log in logs:
        plot.add(log['update'], *(log[k] for k in keys))
    atomic_write(path, lambda tmp: plot.save(tmp, 'step', fmt='png'))


def _write_json(path, value):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(value, f, indent=1)


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


def _objective_and_strategy(name, net):
    """The engine's objective and strategy for ``--strategy``: R-Drop changes the loss, FGM
    the backward pass."""
    objective = ClassificationLoss(net, gluon.loss.SoftmaxCELoss())
    if name == 'rdrop':
        return RDrop(objective, alpha=1.0), None
    if name == 'fgm':
        return objective, FGM(net.encoder.token_embedding.weight, epsilon=1.0)
    return objective, None


def _finetune_trainer(net, opts, steps_per_epoch):
    """``BERTTrainer`` with the options' knobs: optimizer, schedule, parameter groups,
    layer-wise decay, clipping, accumulation, freezing, stale-gradient policy, checkpoints."""
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
                       seed=opts.seed, checkpoint_dir=_checkpoint_dir(opts),
                       quiet=not opts.show_groups)


def _nli_arrays(dataset):
    return (dataset.all_token_ids, dataset.all_segments, dataset.valid_lens, dataset.labels)


def finetune(opts, fallback=None):
    """Fine-tune a pretrained folder on an NLI task as the d2l chapter does, on the training
    engine (checkpoints every ``--checkpoint-every`` updates and at each epoch's end,
    ``--resume``); save the classifier, its curves and print a confusion matrix. Returns the
    metrics."""
    devices = parse_devices(opts.devices)
    seed_everything(opts.seed)
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
    train_batches = EpochBatches(_nli_arrays(SNLIBERTDataset(train, opts.max_len, vocab)),
                                 opts.batch_size, shuffle=True, seed=opts.seed)
    test_batches = EpochBatches(_nli_arrays(SNLIBERTDataset(test, opts.max_len, vocab)),
                                opts.batch_size, shuffle=False)
    net = BERTClassifier(bert, num_classes=len(LABELS))
    net.output.initialize(init.Xavier(), ctx=devices)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = _finetune_trainer(net, opts, steps_per_epoch=len(train_batches))
    objective, strategy = _objective_and_strategy(opts.strategy, net)
    engine = Engine(objective, trainer, devices, strategy=strategy)
    evaluation = Evaluation(lambda: {'test_acc': evaluate_accuracy(net, test_batches, devices)})
    keys = ('loss', 'accuracy', 'test_acc')
    total = opts.epochs * -(-len(train_batches) // opts.accumulate)
    callbacks = [ProgressBar(total, 'fine-tune', keys), evaluation, LogLines(total, keys),
                 MetricsLog(_checkpoint_dir(opts), plot=keys),
                 Checkpointing(every=opts.checkpoint_every or None)]
    state = engine.fit(train_batches, epochs=opts.epochs, callbacks=callbacks,
                       resume=opts.resume)
    labels, predictions = predict(net, test_batches, devices)
    matrix = confusion_matrix(labels, predictions, len(LABELS))
    save_classifier(net, vocab, opts.out, LABELS, opts.max_len)
    _plot_epochs(state.logs, evaluation.history, os.path.join(opts.out, 'curves.png'))
    train_metrics, test_acc = state.logs[-1], evaluation.history[-1]['test_acc']
    examples_per_sec = state.samples / state.elapsed
    print(f'loss {train_metrics["loss"]:.3f}, train acc {train_metrics["accuracy"]:.3f}, '
          f'test acc {test_acc:.3f}; {examples_per_sec:.1f} examples/sec on {devices}')
    print(format_confusion_matrix(matrix, LABELS))
    print(f'saved {opts.out}/ (classifier.params, vocab.json, config.json, curves.png)')
    return dict(train_loss=train_metrics['loss'], train_acc=train_metrics['accuracy'],
                test_acc=test_acc, examples_per_sec=examples_per_sec,
                confusion_matrix=matrix.tolist())


def _plot_epochs(logs, evaluations, path):
    """Train loss and accuracy and test accuracy by epoch."""
    plot = LossPlot(('train loss', 'train acc', 'test acc'))
    for log, evaluation in zip(logs, evaluations):
        plot.add(evaluation['epoch'], log['loss'], log['accuracy'], evaluation['test_acc'])
    atomic_write(path, lambda tmp: plot.save(tmp, 'epoch', fmt='png'))


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
    print('label\t' + '\t'.join(config['labels']))
    for p in probabilities:
        print(config['labels'][int(p.argmax())] + '\t' + '\t'.join(f'{v:.4f}' for v in p))
    return probabilities
