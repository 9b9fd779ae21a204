"""The jobs behind the command line: pretrain, fine-tune, evaluate, export, predict, split.

Each takes plain values (the parsed options), prints what it does, and returns its results,
so that scripts and tests can run them without the CLI.
"""
import functools
import os
import sys

import mxnet as mx
import numpy as np
from mxnet import gluon, init

from . import runtime
from .atomic import write_json
from .data import load_wiki_dataset
from .data.synthetic import SyntheticBatches
from .data.tokenization import WhitespaceTokenizer, punctuation_splitting
from .devices import parse_devices
from .distributed import create_kvstore
from .distributed.kvstore import is_distributed
from .folder_lock import folder_locks
from .metrics import confusion_matrix, format_confusion_matrix
from .model import BERTModel, hybridize_for_inference
from .progress import LossPlot
from .train.batches import EpochBatches, LongestInBatch
from .train.callbacks import (Checkpointing, Evaluation, Heartbeat, LogLines, MetricsLog,
                              ProgressBar, StepTimes)
from .corpus_pretraining import (VALIDATION_KEYS, CorpusStart, corpus_start, masking_config,
                                 validation)
from .preflight import check_finetune, check_pretrain, finetune_groups
from .pretrained import save_hf_pretrained
from .pretrained.folders import load_pretrained_folder, model_width
from .pretrained.saved import non_finite_parameter, save_pretrained
from .tasks import QuestionAnswering, get_task
from .tasks.classification import ClassificationTask
from .tasks.saved import check_replaceable, load_task_model, save_task_model
from .tasks.serving import examples_from_lines, read_lines
from .tasks.splits import load_splits
from .train import mixed_precision
from .train.engine import Engine
from .train.finetune import ClassificationLoss
from .train.pretrain import PretrainingLoss, PretrainingObjective
from .train.recipes import finetune_lr, warmup_updates
from .train.resumed_options import FINETUNE_FIXED, PRETRAIN_FIXED, ResumedOptions
from .train.schedules import default_schedule
from .train.seeding import seed_everything
from .train.strategies import FGM, RDrop
from .train.trainer import BERTTrainer, NonFiniteError

UNKNOWN_HINT_SHARE = 0.05  # above this share of <unk> training tokens, finetune names the fix
UNKNOWN_HINT_SAMPLE = 1000  # training examples the fix is measured on

def _kvstore(opts):
    """The KVStore to train with: ``--kvstore``, else ``dist_sync`` under the launcher (which
    sets ``DMLC_ROLE``), else ``device``. A ``dist`` store is created (joining the job) here;
    a local one is left to the trainer by name, which skips it on one context."""
    kind = opts.kvstore or ('dist_sync' if os.environ.get('DMLC_ROLE') else 'device')
    return create_kvstore(kind, connect_timeout=opts.timeout) if is_distributed(kind) else kind


def checkpoint_dir(opts):
    """``--checkpoint-dir``, else ``OUT.checkpoints`` beside the output folder (never inside
    it: the output folder is replaced whole when saved)."""
    return opts.checkpoint_dir or opts.out.rstrip('/') + '.checkpoints'


def _holding_folder_locks(job):
    """``job(opts, ...)`` holding the locks of ``--out`` and the checkpoint folder: a second
    run on them is one error naming the running one (``folder_lock``). The workers of one
    launched job share their folders and take none."""
    @functools.wraps(job)
    def locked(opts, *args, **kwargs):
        if os.environ.get('DMLC_ROLE'):
            return job(opts, *args, **kwargs)
        with folder_locks(opts.out, checkpoint_dir(opts)):
            return job(opts, *args, **kwargs)
    return locked


def _pretraining_data(opts, fallback, devices, kvstore):
    """A ``CorpusStart``: WikiText-2 in a seeded order, ``--synthetic`` batches (no
    vocabulary), or ``--corpus`` (with ``--pretrained``: the model to continue)."""
    if getattr(opts, 'corpus', None):
        if isinstance(kvstore, mx.kv.KVStore):
            return corpus_start(opts, devices, rank=kvstore.rank,
                                num_workers=kvstore.num_workers)
        return corpus_start(opts, devices)
    masking = masking_config(opts)
    if opts.synthetic:
        return CorpusStart(SyntheticBatches(opts.batch_size, vocab_size=opts.vocab_size,
                                            max_len=opts.max_len, seed=opts.seed,
                                            masking=masking), None, opts.vocab_size)
    dataset = load_wiki_dataset(opts.max_len, opts.data_dir, seed=opts.seed, masking=masking,
                                fallback=fallback)
    print(f'data: {len(dataset)} sentence pairs, vocabulary of {len(dataset.vocab)}')
    batches = EpochBatches(dataset.arrays, opts.batch_size, shuffle=True, seed=opts.seed)
    # WikiText-2 comes split into words: d2l's whitespace tokenization is the one it saw
    return CorpusStart(batches, dataset.vocab, len(dataset.vocab),
                       tokenizer=WhitespaceTokenizer())


@_holding_folder_locks
def pretrain(opts, fallback=None):
    """Pretrain a BERT (MLM + NSP) on one context, several, or as one worker of a job under
    the launcher; checkpoint every ``--checkpoint-every`` updates, resume with ``--resume``,
    and save a d2l-style folder (on the chief worker). Returns a summary dict."""
    check_pretrain(opts)
    devices = parse_devices(opts.devices)
    width = model_width(opts.pretrained) if getattr(opts, 'pretrained', None) \
        else opts.num_hiddens
    # under the launcher the chief says it, with the other lines only it prints
    amp = mixed_precision.start(getattr(opts, 'amp', None), devices, width,
                                quiet=bool(os.environ.get('DMLC_ROLE')))
    seed_everything(opts.seed)
    kvstore = _kvstore(opts)
    start = _pretraining_data(opts, fallback, devices, kvstore)
    batches, vocab, vocab_size = start.batches, start.vocab, start.vocab_size
    net = start.bert
    if net is None:
        # d2l's BERTModel keeps its default table of 1000 positions and only the data is
        # padded to max_len, so that a pretrained model fine-tunes on longer sequences
        net = BERTModel(vocab_size, opts.num_hiddens, opts.ffn_num_hiddens, opts.num_heads,
                        opts.num_blks, opts.dropout, activation=opts.activation)
        net.initialize(init.Xavier(), ctx=devices)
    trainer = BERTTrainer(net, opts.optimizer, lr=opts.lr, wd=opts.weight_decay,
                          schedule=opts.schedule or default_schedule(opts.warmup_steps),
                          warmup_steps=opts.warmup_steps,
                          num_training_steps=opts.steps, min_lr=opts.min_lr, clip=opts.clip,
                          spike_factor=opts.spike_factor, spike_window=opts.spike_window,
                          spike_patience=opts.spike_patience, seed=opts.seed, kvstore=kvstore,
                          amp=amp, checkpoint_dir=checkpoint_dir(opts), quiet=True)
    objective = PretrainingObjective(net, gluon.loss.SoftmaxCELoss(), vocab_size)
    objective.hybridize(static_alloc=True, static_shape=True)
    engine = Engine(PretrainingLoss(objective), trainer, devices)
    keys = ('mlm_loss', 'nsp_loss')
    timer = StepTimes()
    callbacks = [ResumedOptions(opts, PRETRAIN_FIXED),
                 LogLines(opts.steps, keys + VALIDATION_KEYS), timer,
                 MetricsLog(checkpoint_dir(opts), plot=keys + ('valid_mlm_loss',)),
                 Checkpointing(every=opts.checkpoint_every or None, at_epoch_end=False)]
    if start.valid is not None:
        callbacks.insert(0, Evaluation(validation(net, start.valid, devices, opts.batch_size),
                                       every=opts.eval_every or opts.steps))
    if engine.is_chief:
        if os.environ.get('DMLC_ROLE'):  # the command line left these lines to the chief
            print(runtime.describe(), file=sys.stderr)
            print('precision: ' + mixed_precision.choose(getattr(opts, 'amp', None), devices,
                                                         width)[1], flush=True)
        callbacks.insert(0, ProgressBar(opts.steps, 'pretrain', keys))
        print(f'{engine.num_workers} worker(s) x {[str(d) for d in devices]}, kvstore '
              f'{engine.kvstore_type}, global batch {opts.batch_size}, {opts.steps} steps'
              + (f', {amp} AMP' if amp else ''), flush=True)
    if engine.num_workers > 1:
        callbacks.append(Heartbeat(opts.timeout))
    try:
        state = engine.fit(batches, num_updates=opts.steps, log_every=opts.log_every,
                           callbacks=callbacks, resume=opts.resume)
    except NonFiniteError as error:
        raise ValueError(_pretraining_diverged(opts, net, trainer, error)) from None
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
        save_pretrained(net, vocab, opts.out, config=net.config,
                        plot=_step_plot(state.logs, keys), tokenizer=start.tokenizer)
        print(f'saved {opts.out}/ (vocab.json, pretrained.params, config.json, loss.png)')
    if getattr(opts, 'save_hf', None):
        save_hf_pretrained(net, vocab, opts.save_hf, tokenizer=start.hf_tokenizer)
        print(f'saved {opts.save_hf}/ (HF: config.json, model.safetensors, vocab.txt)')
    if state.logs:
        last = state.logs[-1]
        print(f'MLM loss {last["mlm_loss"]:.3f}, NSP loss {last["nsp_loss"]:.3f} (mean over '
              f'steps {last["update"] - last["updates"] + 1}-{last["update"]})')
    if median:
        print(f'{summary["samples_per_sec"]:.1f} sentence pairs/sec (median step '
              f'{median:.3f} s, first step left out)', flush=True)
    if opts.summary:
        write_json(opts.summary, summary)
    return summary


def _pretraining_diverged(opts, net, trainer, error):
    """The one line of a pretraining run stopped by non-finite steps or loss spikes: the
    trainer's reason (without its advice to API callers), the parameter holding NaN or
    infinite values (if one does), what to change, and that nothing was saved."""
    reason = str(error).split('; ')[0]
    name = non_finite_parameter(net)
    held = f'; parameter {name} holds NaN or infinite values' if name is not None else ''
    return (f'pretraining diverged after {trainer.num_updates} updates: {reason}{held}; lower '
            f'--lr {trainer.lr:g} (or set --clip, or more --warmup-steps); nothing saved, '
            f'--out {opts.out} left as it was')


def _step_plot(logs, keys):
    plot = LossPlot(keys)
    for log in logs:
        plot.add(log['update'], *(log[k] for k in keys))
    return plot


def task_columns(opts):
    """The file-reading options the user gave (``--text-columns``, ``--label-column``,
    ``--format``, ``--quoting``), as ``Task.read`` keywords."""
    columns = {}
    if getattr(opts, 'text_columns', None):
        columns['text_columns'] = [c.strip() for c in opts.text_columns.split(',')]
    if getattr(opts, 'label_column', None):
        columns['label_column'] = opts.label_column
    if getattr(opts, 'format', None):
        columns['fmt'] = opts.format
    if getattr(opts, 'quoting', False):
        columns['quoting'] = True
    return columns


# finetune's options that are settings of the question-answering task
QA_OPTIONS = ('doc_stride', 'max_query_len', 'max_answer_len')


def finetune_task(opts):
    """The task of ``--task`` with its settings from the options (``--doc-stride``,
    ``--max-query-len``, ``--max-answer-len`` for question-answering), fitted to
    ``--max-len``; ValueError naming an option given to a task that has no such setting."""
    settings = {name: getattr(opts, name) for name in QA_OPTIONS
                if getattr(opts, name, None) is not None}
    if settings and opts.task != QuestionAnswering.name:
        name = next(iter(settings))
        raise ValueError(f'--{name.replace("_", "-")} {settings[name]}: a setting of --task '
                         f'{QuestionAnswering.name}; --task {opts.task} has no such setting')
    task = get_task(opts.task, **settings)
    try:
        task.fit_to(opts.max_len)
    except ValueError as error:
        raise ValueError(f'--task {opts.task} at --max-len {opts.max_len}: {error}') from None
    return task


def _objective_and_strategy(name, task, net):
    """The engine's objective and strategy for ``--strategy``: R-Drop changes a classifier's
    loss, FGM the backward pass."""
    objective = task.objective(net)
    if name == 'rdrop':
        if not isinstance(objective, ClassificationLoss):
            raise ValueError(f'--strategy rdrop: R-Drop compares two predicted class '
                             f'distributions; task {task.name!r} has none')
        return RDrop(objective, alpha=1.0), None
    if name == 'fgm':
        return objective, FGM(net.encoder.token_embedding.weight, epsilon=1.0)
    return objective, None


def _finetune_trainer(net, opts, steps_per_epoch, num_hiddens, amp):
    """``BERTTrainer`` with the options' knobs: optimizer, learning rate (by default the
    recipe's for a BERT of ``num_hiddens``), schedule and warm-up, parameter groups,
    layer-wise decay, clipping, accumulation, freezing, stale-gradient policy, AMP in
    ``amp``, checkpoints."""
    groups = finetune_groups(opts)
    updates = opts.epochs * -(-steps_per_epoch // opts.accumulate)
    lr = opts.lr if opts.lr is not None else finetune_lr(num_hiddens)
    warmup = warmup_updates(opts.warmup_steps, opts.warmup_ratio, updates, opts.schedule)
    print(f'lr {lr:g}, {opts.schedule} schedule, {warmup} warm-up of {updates} updates'
          + (f', {amp} AMP' if amp else ''))
    return BERTTrainer(net, opts.optimizer, lr=lr, wd=opts.weight_decay,
                       schedule=opts.schedule, warmup_steps=warmup,
                       num_training_steps=updates, groups=groups,
                       layerwise_decay=opts.layerwise_decay, freeze=opts.freeze,
                       clip=opts.clip, accumulate=opts.accumulate, stale=opts.stale,
                       amp=amp, seed=opts.seed, checkpoint_dir=checkpoint_dir(opts),
                       quiet=not opts.show_groups)


@_holding_folder_locks
def finetune(opts, fallback=None):
    """Fine-tune a pretrained folder (gluonbert's or HF's) on a task (``--task``: any of
    ``tasks.TASKS``) on the training engine: evaluate on the dev split every epoch or every
    ``--eval-every`` updates, keep the best model by the task's main metric in ``--out``
    (with its tokenizer), stop early after ``--patience`` evaluations without improvement,
    checkpoint and ``--resume``; then score the best model on ``--test``. Returns a dict of
    the best dev metrics, the test metrics and the trivial baseline's."""
    devices = parse_devices(opts.devices)
    amp = mixed_precision.start(getattr(opts, 'amp', None), devices,
                                model_width(opts.pretrained))
    seed_everything(opts.seed)
    task = check_finetune(opts)
    if not opts.resume:  # the best model replaces --out whole: never a folder of the user's
        check_replaceable(opts.out)
    bert, vocab, tokenizer, kind = load_pretrained_folder(opts.pretrained, dropout=opts.dropout,
                                                          devices=devices)
    if opts.split_punctuation:
        tokenizer = punctuation_splitting(tokenizer, vocab)
    source = f'pretrained {opts.pretrained} ({kind})'
    if opts.max_len > bert.encoder.max_len:
        raise ValueError(f'--max-len {opts.max_len} exceeds the pretrained model\'s max_len '
                         f'{bert.encoder.max_len}')
    if opts.from_scratch:
        bert.initialize(init.Xavier(), ctx=devices, force_reinit=True)
        source = 'random initialisation (same architecture and vocab)'
    splits = load_splits(task, opts.train, opts.dev, opts.test, columns=task_columns(opts),
                         data_dir=opts.data_dir, fallback=fallback,
                         train_limit=opts.train_limit, eval_limit=opts.test_limit)
    labels = task.labels_from(splits.train)
    for examples in (splits.dev, splits.test or ()):  # scored after training: checked before
        task.check_gold(examples, labels)
    print(f'fine-tuning from {source} on {task.name}: {len(splits.train)} training, '
          f'{len(splits.dev)} dev' + (f', {len(splits.test)} test' if splits.test else '') +
          f' examples ({splits.note})')
    train = task.encode(splits.train, tokenizer, vocab, opts.max_len, labels)
    dev = task.encode(splits.dev, tokenizer, vocab, opts.max_len, labels)
    unknown = _unknown_share(train, vocab)
    print(f'{unknown:.1%} of the training tokens are unknown to the vocabulary '
          f'({len(vocab)} tokens)' +
          (f'; metrics: {task.metrics_note}' if task.metrics_note else ''))
    if (unknown > UNKNOWN_HINT_SHARE and isinstance(tokenizer, WhitespaceTokenizer)
            and tokenizer.lower):  # the tokenizer --split-punctuation applies to
        print(_unknown_hint(task, splits.train, tokenizer, vocab, opts.max_len, labels))
    per_token = train.labels.shape == train.tokens.shape  # token classification's tags
    train_batches = LongestInBatch(train.arrays, opts.batch_size, shuffle=True, seed=opts.seed,
                                   sequence_arrays=(0, 1, 3) if per_token else (0, 1), lengths=2,
                                   group_by_length=getattr(opts, 'group_by_length', False))
    net = task.head(bert, labels)
    net.output.initialize(init.Xavier(), ctx=devices)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = _finetune_trainer(net, opts, len(train_batches), bert.config['num_hiddens'], amp)
    objective, strategy = _objective_and_strategy(opts.strategy, task, net)
    engine = Engine(objective, trainer, devices, strategy=strategy)

    def evaluate():
        return {f'dev_{k}': v for k, v in
                task.evaluate(net, dev, splits.dev, devices, opts.batch_size).items()}

    def save_best(metrics):
        if trainer.num_updates == 0 and trainer.guard.skipped:
            raise ValueError(_diverged(opts, net, trainer, kept_best=False))
        save_task_model(net, bert, vocab, tokenizer, opts.out, task, labels, opts.max_len)

    main_metric = f'dev_{task.main_metric}'
    evaluation = Evaluation(evaluate, every=opts.eval_every or None, metric=main_metric,
                            mode='max' if task.greater_is_better else 'min',
                            patience=opts.patience, on_best=save_best)
    keys = ('loss', main_metric)
    total = opts.epochs * -(-len(train_batches) // opts.accumulate)
    if opts.eval_every < 0:
        raise ValueError(f'--eval-every {opts.eval_every}; expected a number of updates >= 1, '
                         f'or 0 to evaluate after each epoch')
    if opts.eval_every > total:
        raise ValueError(f'--eval-every {opts.eval_every} exceeds the run\'s {total} updates: '
                         f'no evaluation would pick the model to keep')
    callbacks = [ResumedOptions(opts, FINETUNE_FIXED),
                 ProgressBar(total, f'fine-tune {task.name}', keys), evaluation,
                 LogLines(total, keys), MetricsLog(checkpoint_dir(opts), plot=keys),
                 Checkpointing(every=opts.checkpoint_every or None)]
    try:
        state = engine.fit(train_batches, epochs=opts.epochs, callbacks=callbacks,
                           resume=opts.resume)
    except NonFiniteError:
        raise ValueError(_diverged(opts, net, trainer,
                                   kept_best=evaluation.best is not None)) from None
    if state.stop_reason:
        print(state.stop_reason)
    best = next(m for m in evaluation.history if m[main_metric] == evaluation.best)
    print(f'best {main_metric} {evaluation.best:.4f} (update {evaluation.best_update}); '
          f'{state.samples / state.elapsed:.1f} examples/sec on {devices}')
    result = dict(task=task.name, main_metric=task.main_metric, dev=best, test=None,
                  baseline=task.baseline(splits.train, splits.test or splits.dev),
                  updates=state.updates, examples_per_sec=state.samples / state.elapsed)
    if splits.test is not None:
        net, *_ = load_task_model(opts.out, devices)
        hybridize_for_inference(net, devices)  # as `gluonbert evaluate`: the same numbers
        test = task.encode(splits.test, tokenizer, vocab, opts.max_len, labels)
        result['test'] = _score(net, task, splits.test, test, labels, devices,
                                opts.batch_size)
        print('test (best model): ' + _metrics_line(result['test']))
    print('trivial baseline: ' + _metrics_line(result['baseline']))
    print(f'saved {opts.out}/ (model.params, vocab.json, tokenizer.json, config.json); '
          f'metrics per evaluation in {checkpoint_dir(opts)}/metrics.csv, .json and '
          f'curves.png')
    return result


def _diverged(opts, net, trainer, kept_best):
    """The one line of a fine-tuning run stopped by non-finite steps: how many, the parameter
    holding NaN or infinite values (if one does), the likely causes, and what --out holds."""
    name = non_finite_parameter(net)
    cause = (f'parameter {name} holds NaN or infinite values' if name is not None else
             'the loss or gradient was NaN or infinite')
    head = (f'every training step ({trainer.guard.skipped}) was skipped as non-finite'
            if trainer.num_updates == 0 else
            f'training diverged after {trainer.num_updates} updates '
            f'({trainer.guard.patience} non-finite steps in a row)')
    kept = (f'--out {opts.out} keeps the best model before it' if kept_best else
            f'nothing saved, --out {opts.out} left as it was')
    return (f'{head}: {cause} (from --pretrained {opts.pretrained}, or too high a --lr '
            f'{trainer.lr:g}); {kept}')


def _unknown_hint(task, examples, tokenizer, vocab, max_len, labels):
    """What the unknown tokens of a whitespace tokenizer are, measured on the first examples:
    punctuation touching words (raw text), which --split-punctuation splits off, or words the
    vocabulary lacks (it was built from the pretraining corpus), which splitting cannot fix."""
    sample = examples[:UNKNOWN_HINT_SAMPLE]
    before = _unknown_share(task.encode(sample, tokenizer, vocab, max_len, labels), vocab)
    split = _unknown_share(task.encode(sample, punctuation_splitting(tokenizer, vocab), vocab,
                                       max_len, labels), vocab)
    if split <= 0.75 * before:  # splitting finds a quarter of the unknown tokens or more
        return ("  the model's tokenizer splits at whitespace only (d2l's, for pre-tokenized "
                'text): on raw text, --split-punctuation splits punctuation off words '
                f'({split:.1%} unknown instead of {before:.1%})')
    return (f'  words the vocabulary lacks, not punctuation (--split-punctuation would leave '
            f'{split:.1%} unknown): the vocabulary comes from the pretraining corpus; one '
            f'pretrained on text like this (pretrain --corpus) covers them')


def _unknown_share(features, vocab):
    """The share of ``<unk>`` among the real (unpadded) tokens of encoded features."""
    real = np.arange(features.tokens.shape[-1]) < features.valid_lens[..., None]
    return float((features.tokens[real] == vocab['<unk>']).mean())


def _metrics_line(metrics):
    return ', '.join(f'{k} {v:.4f}' for k, v in metrics.items() if isinstance(v, float))


def _score(net, task, examples, features, labels, devices, batch_size):
    """The task's metrics of ``net`` on encoded examples; a classifier's confusion matrix is
    printed and returned with them."""
    predictions = task.postprocess(task.predict(net, features, devices, batch_size),
                                   features, examples)
    metrics = task.metrics(predictions, examples)
    if isinstance(task, ClassificationTask):
        ids = {label: i for i, label in enumerate(labels)}
        matrix = confusion_matrix([ids[e.label] for e in examples],
                                  [ids[p] for p in predictions], len(ids))
        print(format_confusion_matrix(matrix, labels))
        metrics['confusion_matrix'] = matrix.tolist()
    return metrics


def _eval_examples(task, path, opts, fallback):
    """The examples of the labelled file ``path``, or a preset's test split."""
    if path is not None:
        examples = task.read(path, **task_columns(opts))
    elif hasattr(task, 'default_splits'):
        examples = task.default_splits(opts.data_dir, fallback)[2]
    else:
        raise ValueError(f'--test is required for task {task.name!r} (the labelled file to '
                         f'score)')
    limit = getattr(opts, 'test_limit', 0)
    return examples[:limit] if limit else examples


def evaluate(opts, fallback=None):
    """The task's metrics of a fine-tuned folder on a labelled file (``--test``, or a
    preset's test split), with a confusion matrix for classification."""
    devices = parse_devices(opts.devices)
    net, task, vocab, tokenizer, config = load_task_model(opts.model, devices)
    examples = _eval_examples(task, opts.test, opts, fallback)
    features = task.encode(examples, tokenizer, vocab, config['max_len'], config['labels'])
    hybridize_for_inference(net, devices)
    metrics = _score(net, task, examples, features, config['labels'], devices,
                     opts.batch_size)
    print(f'{task.name} on {len(examples)} examples: {_metrics_line(metrics)}')
    return metrics


def export(opts, fallback=None):
    """Export a fine-tuned folder to ONNX with its tokenizer, verified under onnxruntime on
    random batches and on real examples (``--data``, or a preset's test split); prints and
    returns the ``ExportReport``. With ``--to hf``, write it as an HF task folder instead
    (``pretrained.hf_tasks``) and return the folder."""
    from .export import export_onnx
    net, task, vocab, tokenizer, config = load_task_model(opts.model)
    if getattr(opts, 'to', 'onnx') == 'hf':
        from .pretrained.hf_tasks import save_hf_task_model
        save_hf_task_model(net, task, vocab, tokenizer, config, opts.out)
        print(f'saved {opts.out}/ (HF {type(net).__name__.replace("BERT", "Bert")}: '
              f'config.json, model.safetensors, vocab.txt, tokenizer.json)')
        return opts.out
    examples = None
    if opts.data is not None or hasattr(task, 'default_splits'):
        real = _eval_examples(task, opts.data, opts, fallback)[:64]
        examples = task.encode(real, tokenizer, vocab, config['max_len'],
                               config['labels']).inputs
    names = config['labels'] if task.name != 'regression' else None
    report = export_onnx(net, opts.out, vocab, names, config['max_len'], tokenizer=tokenizer,
                         examples=examples, task_settings=task.settings(), quantize=opts.int8,
                         overwrite=True)
    print(report)
    return report


def predict_lines(opts):
    """Predictions for the lines of ``opts.input`` (a file, or '-' for stdin) with a
    fine-tuned folder, read and printed as ``export/predict.py`` does (``tasks.serving``)."""
    net, task, vocab, tokenizer, config = load_task_model(opts.model)
    hybridize_for_inference(net)
    if opts.input == '-':
        data, source = sys.stdin.buffer.read(), 'stdin'
    else:
        with open(opts.input, 'rb') as f:
            data, source = f.read(), opts.input
    examples = examples_from_lines(task, read_lines(data, source), source)
    first = task.output_header(config['labels'], examples)
    if first is not None:
        print(first)
    for start in range(0, len(examples), opts.batch_size):
        batch = examples[start:start + opts.batch_size]
        features = task.encode(batch, tokenizer, vocab, config['max_len'], config['labels'])
        outputs = task.predict(net, features, [mx.cpu()], opts.batch_size)
        for line in task.output_lines(batch, features, outputs):
            print(line)


def split(opts):
    """Write ``opts.out``'s train/dev/test files from ``opts.file`` (``tasks.group_splits``)
    and print how many examples each holds."""
    from .tasks.group_splits import split_file, split_fractions
    counts = split_file(opts.file, opts.out, opts.by,
                        split_fractions(opts.dev_fraction, opts.test_fraction), opts.seed)
    unit = 'questions' if opts.file.lower().endswith('.json') else 'rows'
    print(f'{opts.out}: ' + ', '.join(f'{name} {count} {unit}' for name, count in
                                      counts.items()))
    return counts
