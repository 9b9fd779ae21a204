"""The jobs behind the command line: pretrain, fine-tune, evaluate, export, predict, split.

Each takes its command's options (``options``: a dataclass, from the command line, a config
file or a script alike), prints what it does, and returns its results, so that scripts and
tests can run them without the CLI.
"""
import dataclasses
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
from .options import checkpoint_dir
from .preflight import check_finetune, check_pretrain, finetune_groups
from .pretrained import save_hf_pretrained
from .pretrained.folders import load_pretrained_folder, model_width
from .pretrained.saved import non_finite_parameter, save_pretrained
from .tasks.classification import ClassificationTask
from .tasks.saved import check_replaceable, load_task_model, save_task_model
from .tasks.serving import examples_from_lines, read_lines
from .tasks.splits import load_splits
from .train import mixed_precision
from .train.engine import Engine
from .train.finetune import ClassificationLoss
from .train.pretrain import PretrainingLoss, PretrainingObjective
from .train.resumed_options import FINETUNE_FIXED, PRETRAIN_FIXED, ResumedOptions
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


def _trainer(net, opts, num_updates, num_hiddens, amp, **knobs):
    """The ``BERTTrainer`` of a job's options, pretraining's or fine-tuning's: the trainer
    options both have (``options.TRAINER_OPTIONS``), resolved by the job's options for a run of
    ``num_updates`` on a BERT ``num_hiddens`` wide (``learning_rate``, ``lr_schedule``,
    ``warmup``), AMP in ``amp``, checkpoints; ``knobs``: the trainer's keywords from the
    options only that job has."""
    return BERTTrainer(net, opts.optimizer, lr=opts.learning_rate(num_hiddens),
                       wd=opts.weight_decay, schedule=opts.lr_schedule(),
                       warmup_steps=opts.warmup(num_updates), num_training_steps=num_updates,
                       clip=opts.clip, amp=amp, seed=opts.seed,
                       checkpoint_dir=checkpoint_dir(opts), **knobs)


def _pretraining_data(opts, devices, kvstore):
    """A ``CorpusStart``: WikiText-2 in a seeded order, ``--synthetic`` batches (no
    vocabulary), or ``--corpus`` (with ``--pretrained``: the model to continue)."""
    if opts.corpus:
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
                                fallback=opts.fallback)
    print(f'data: {len(dataset)} sentence pairs, vocabulary of {len(dataset.vocab)}')
    batches = EpochBatches(dataset.arrays, opts.batch_size, shuffle=True, seed=opts.seed)
    # WikiText-2 comes split into words: d2l's whitespace tokenization is the one it saw
    return CorpusStart(batches, dataset.vocab, len(dataset.vocab),
                       tokenizer=WhitespaceTokenizer())


@_holding_folder_locks
def pretrain(opts):
    """Pretrain a BERT (MLM + NSP) with ``PretrainOptions`` on one context, several, or as one
    worker of a job under the launcher; checkpoint every ``--checkpoint-every`` updates,
    resume with ``--resume``, and save a d2l-style folder (on the chief worker). Returns a
    summary dict."""
    check_pretrain(opts)
    devices = parse_devices(opts.devices)
    width = model_width(opts.pretrained) if opts.pretrained else opts.num_hiddens
    # under the launcher the chief says it, with the other lines only it prints
    amp = mixed_precision.start(opts.amp, devices, width,
                                quiet=bool(os.environ.get('DMLC_ROLE')))
    seed_everything(opts.seed)
    kvstore = _kvstore(opts)
    start = _pretraining_data(opts, devices, kvstore)
    batches, vocab, vocab_size = start.batches, start.vocab, start.vocab_size
    net = start.bert
    if net is None:
        # d2l's BERTModel keeps its default table of 1000 positions and only the data is
        # padded to max_len, so that a pretrained model fine-tunes on longer sequences
        net = BERTModel(vocab_size, opts.num_hiddens, opts.ffn_num_hiddens, opts.num_heads,
                        opts.num_blks, opts.dropout, activation=opts.activation)
        net.initialize(init.Xavier(), ctx=devices)
    trainer = _trainer(net, opts, opts.steps, width, amp, min_lr=opts.min_lr,
                       spike_factor=opts.spike_factor, spike_window=opts.spike_window,
                       spike_patience=opts.spike_patience, kvstore=kvstore, quiet=True)
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
            print('precision: ' + mixed_precision.choose(opts.amp, devices, width)[1],
                  flush=True)
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
    if opts.save_hf:
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


@_holding_folder_locks
def finetune(opts):
    """Fine-tune a pretrained folder (gluonbert's or HF's) with ``FinetuneOptions`` on a task
    (``--task``: any of ``tasks.TASKS``) on the training engine: evaluate on the dev split
    every epoch or every ``--eval-every`` updates, keep the best model by the task's main
    metric in ``--out`` (with its tokenizer), stop early after ``--patience`` evaluations
    without improvement, checkpoint and ``--resume``; then score the best model on ``--test``.
    Returns a dict of the best dev metrics, the test metrics and the trivial baseline's."""
    width = model_width(opts.pretrained)
    opts = opts.for_model(width)
    devices, amp = _start(opts, width)
    task = check_finetune(opts)
    if not opts.resume:  # the best model replaces --out whole: never a folder of the user's
        check_replaceable(opts.out)
    start = _starting_model(opts, devices)
    splits, labels = _read_splits(opts, task)
    print(f'fine-tuning from {start.source} on {task.name}: {len(splits.train)} training, '
          f'{len(splits.dev)} dev' + (f', {len(splits.test)} test' if splits.test else '') +
          f' examples ({splits.note})')
    train, dev = (task.encode(examples, start.tokenizer, start.vocab, opts.max_len, labels)
                  for examples in (splits.train, splits.dev))
    _report_unknown_tokens(opts, task, start, splits.train, train, labels)
    batches = _training_batches(opts, train)
    net = _task_net(task, start.bert, labels, devices)
    trainer = _finetune_trainer(net, opts, len(batches), start.bert.config['num_hiddens'], amp)
    evaluation = _dev_evaluation(opts, task, net, trainer, start, dev, splits.dev, labels,
                                 devices)
    state = _fit(opts, task, net, trainer, batches, evaluation, devices)
    result = _best(task, evaluation, state, splits, devices)
    if splits.test is not None:
        result['test'] = _test(opts, task, start, splits.test, labels, devices)
    print('trivial baseline: ' + _metrics_line(result['baseline']))
    print(f'saved {opts.out}/ (model.params, vocab.json, tokenizer.json, config.json); '
          f'metrics per evaluation in {checkpoint_dir(opts)}/metrics.csv, .json and '
          f'curves.png')
    return result


def _start(opts, width):
    """``(devices, amp)``: the job's devices, its precision (said in one line) for a model
    ``width`` wide, and every random generator seeded."""
    devices = parse_devices(opts.devices)
    amp = mixed_precision.start(opts.amp, devices, width)
    seed_everything(opts.seed)
    return devices, amp


@dataclasses.dataclass
class _StartingModel:
    """The pretrained BERT a fine-tuning run starts from, its vocabulary and tokenizer, and
    where it came from (for the log)."""
    bert: object
    vocab: object
    tokenizer: object
    source: str


def _starting_model(opts, devices):
    """The ``--pretrained`` folder's BERT (re-initialized with ``--from-scratch``), with its
    tokenizer (splitting punctuation with ``--split-punctuation``), at ``--max-len``."""
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
    return _StartingModel(bert, vocab, tokenizer, source)


def _read_splits(opts, task):
    """``(splits, labels)``: the train, dev and test examples, and the labels of training;
    a dev or test label unseen in training is refused now, before training."""
    splits = load_splits(task, opts.train, opts.dev, opts.test, columns=opts.read_options(),
                         data_dir=opts.data_dir, fallback=opts.fallback,
                         train_limit=opts.train_limit, eval_limit=opts.test_limit)
    labels = task.labels_from(splits.train)
    for examples in (splits.dev, splits.test or ()):
        task.check_gold(examples, labels)
    return splits, labels


def _report_unknown_tokens(opts, task, start, examples, features, labels):
    """Say the share of unknown training tokens, and what would lower it when it is high."""
    unknown = _unknown_share(features, start.vocab)
    print(f'{unknown:.1%} of the training tokens are unknown to the vocabulary '
          f'({len(start.vocab)} tokens)' +
          (f'; metrics: {task.metrics_note}' if task.metrics_note else ''))
    tokenizer = start.tokenizer
    if (unknown > UNKNOWN_HINT_SHARE and isinstance(tokenizer, WhitespaceTokenizer)
            and tokenizer.lower):  # the tokenizer --split-punctuation applies to
        print(_unknown_hint(task, examples, tokenizer, start.vocab, opts.max_len, labels))


def _training_batches(opts, train):
    """Shuffled batches of the encoded training examples, each as long as its longest."""
    per_token = train.labels.shape == train.tokens.shape  # token classification's tags
    return LongestInBatch(train.arrays, opts.batch_size, shuffle=True, seed=opts.seed,
                          sequence_arrays=(0, 1, 3) if per_token else (0, 1), lengths=2,
                          group_by_length=opts.group_by_length)


def _task_net(task, bert, labels, devices):
    """The task's head on ``bert``, its output layer initialized, hybridized."""
    net = task.head(bert, labels)
    net.output.initialize(init.Xavier(), ctx=devices)
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def _finetune_trainer(net, opts, steps_per_epoch, num_hiddens, amp):
    """The trainer of the fine-tuning options for a BERT ``num_hiddens`` wide, its learning
    rate, schedule and warm-up said in one line; the fine-tuning knobs: parameter groups,
    layer-wise decay, freezing, accumulation, the stale-gradient policy."""
    updates = opts.updates(steps_per_epoch)
    print(f'lr {opts.learning_rate(num_hiddens):g}, {opts.lr_schedule()} schedule, '
          f'{opts.warmup(updates)} warm-up of {updates} updates' + (f', {amp} AMP' if amp else ''))
    return _trainer(net, opts, updates, num_hiddens, amp, groups=finetune_groups(opts),
                    layerwise_decay=opts.layerwise_decay, freeze=opts.freeze,
                    accumulate=opts.accumulate, stale=opts.stale, quiet=not opts.show_groups)


def _dev_evaluation(opts, task, net, trainer, start, dev, examples, labels, devices):
    """The engine's ``Evaluation`` on dev, which saves each better model to ``--out``."""
    def evaluate():
        return {f'dev_{k}': v for k, v in
                task.evaluate(net, dev, examples, devices, opts.batch_size).items()}

    def save_best(metrics):
        if trainer.num_updates == 0 and trainer.guard.skipped:
            raise ValueError(_diverged(opts, net, trainer, kept_best=False))
        save_task_model(net, start.bert, start.vocab, start.tokenizer, opts.out, task, labels,
                        opts.max_len)

    return Evaluation(evaluate, every=opts.eval_every or None, metric=f'dev_{task.main_metric}',
                      mode='max' if task.greater_is_better else 'min',
                      patience=opts.patience, on_best=save_best)


def _fit(opts, task, net, trainer, batches, evaluation, devices):
    """Train for ``--epochs`` on the engine with its callbacks (progress, evaluation, logs,
    checkpoints); a run that diverges is one ValueError saying what ``--out`` holds."""
    total = opts.updates(len(batches))
    if opts.eval_every > total:
        raise ValueError(f'--eval-every {opts.eval_every} exceeds the run\'s {total} updates: '
                         f'no evaluation would pick the model to keep')
    objective, strategy = _objective_and_strategy(opts.strategy, task, net)
    engine = Engine(objective, trainer, devices, strategy=strategy)
    keys = ('loss', evaluation.metric)
    callbacks = [ResumedOptions(opts, FINETUNE_FIXED),
                 ProgressBar(total, f'fine-tune {task.name}', keys), evaluation,
                 LogLines(total, keys), MetricsLog(checkpoint_dir(opts), plot=keys),
                 Checkpointing(every=opts.checkpoint_every or None)]
    try:
        state = engine.fit(batches, epochs=opts.epochs, callbacks=callbacks,
                           resume=opts.resume)
    except NonFiniteError:
        raise ValueError(_diverged(opts, net, trainer,
                                   kept_best=evaluation.best is not None)) from None
    if state.stop_reason:
        print(state.stop_reason)
    return state


def _best(task, evaluation, state, splits, devices):
    """The run's result: the best dev metrics (said in one line), the trivial baseline's,
    the updates and the speed."""
    best = next(m for m in evaluation.history if m[evaluation.metric] == evaluation.best)
    print(f'best {evaluation.metric} {evaluation.best:.4f} (update {evaluation.best_update}); '
          f'{state.samples / state.elapsed:.1f} examples/sec on {devices}')
    return dict(task=task.name, main_metric=task.main_metric, dev=best, test=None,
                baseline=task.baseline(splits.train, splits.test or splits.dev),
                updates=state.updates, examples_per_sec=state.samples / state.elapsed)


def _test(opts, task, start, examples, labels, devices):
    """The best model's metrics on the test examples, read back from ``--out`` and run as
    ``gluonbert evaluate`` runs it (the same numbers)."""
    net, *_ = load_task_model(opts.out, devices)
    hybridize_for_inference(net, devices)
    features = task.encode(examples, start.tokenizer, start.vocab, opts.max_len, labels)
    metrics = _score(net, task, examples, features, labels, devices, opts.batch_size)
    print('test (best model): ' + _metrics_line(metrics))
    return metrics


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


def _eval_examples(task, path, opts, fallback, limit=0):
    """The examples of the labelled file ``path``, or a preset's test split; the first
    ``limit`` of them (0: all)."""
    if path is not None:
        examples = task.read(path, **opts.read_options())
    elif hasattr(task, 'default_splits'):
        examples = task.default_splits(opts.data_dir, fallback)[2]
    else:
        raise ValueError(f'--test is required for task {task.name!r} (the labelled file to '
                         f'score)')
    return examples[:limit] if limit else examples


def evaluate(opts, fallback=None):
    """The task's metrics of a fine-tuned folder on a labelled file (``--test``, or a
    preset's test split), with a confusion matrix for classification."""
    devices = parse_devices(opts.devices)
    # the precision finetune's own test ran in (--amp auto), so that the numbers agree
    mixed_precision.start(opts.amp, devices, model_width(opts.model))
    net, task, vocab, tokenizer, config = load_task_model(opts.model, devices)
    examples = _eval_examples(task, opts.test, opts, fallback, opts.test_limit)
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
    if opts.to == 'hf':
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
    fine-tuned folder, read and printed as ``export/predict.py`` does (``tasks.serving``), in
    the precision of ``--amp`` (not said: stdout holds the predictions only)."""
    mixed_precision.start(opts.amp, [mx.cpu()], model_width(opts.model), quiet=True)
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
