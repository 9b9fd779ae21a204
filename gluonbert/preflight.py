"""The checks that need no data, run before any data set is located, read or preprocessed.

A bad option fails at once with its own message: never after minutes of preprocessing, and
never behind "SNLI not found" on a machine without the data (issue 30). ``check(opts)`` runs,
for a command's options (``options``; each value was checked when they were built), in this
order:

1. ``--devices`` and ``--amp`` (pretrain, finetune, main, evaluate);
2. the options of the command: the architecture and the data-source options of pretraining
   (``--corpus`` or ``--synthetic``, the options that need them, ``--eval-every`` against
   ``--steps``); the task's settings at ``--max-len``, ``--groups``, ``--strategy`` and
   ``--eval-every`` against the updates ``--train-limit`` allows when fine-tuning; split's
   fractions;
3. ``--out`` and ``--resume`` (``check_outputs``);
4. the files and folders written besides ``--out``: ``--checkpoint-dir``, ``--summary``,
   ``--save-hf``, split's ``--out``.

The command line runs it before any job (parsing has checked that a training step fits in
memory). The jobs run the checks of their options too (``check_pretrain``,
``check_finetune``), so that scripts calling them without the command line fail as early.
"""
import json
import os

from .options import ONNX_ONLY, checkpoint_dir

# BERTModel's defaults, which the pretraining job builds the model with
_MAX_POSITIONS, _LAYER_NORM_EPS = 1000, 1e-5
# finetune's options that are settings of the question-answering task
QA_OPTIONS = ('doc_stride', 'max_query_len', 'max_answer_len')


def check(opts):
    """Every data-free check of a command's options ``opts``, in the order above."""
    from .devices import parse_devices
    from .train.mixed_precision import check_option
    if opts.command in ('main', 'pretrain', 'finetune', 'evaluate'):
        amp = None if opts.command == 'main' else opts.amp
        check_option(amp, parse_devices(opts.devices))
    elif opts.command == 'predict':
        check_option(opts.amp, parse_devices('cpu'))
    if opts.command == 'main':
        check_pretrain(opts.pretrain_options())
    elif opts.command == 'pretrain':
        check_pretrain(opts)
    elif opts.command == 'finetune':
        check_finetune(opts)
    elif opts.command == 'split':
        from .tasks.group_splits import split_fractions
        split_fractions(opts.dev_fraction, opts.test_fraction)
    check_outputs(opts)
    _check_paths(opts)


def check_pretrain(opts):
    """Pretraining's options (``PretrainOptions``): the architecture of a new model, the
    data-source options, and ``--eval-every`` of a run that validates."""
    from .corpus_pretraining import check_sources
    from .model.bert import check_options
    check_sources(opts)
    if not opts.pretrained:  # a continued model keeps its architecture
        check_options(opts.vocab_size if opts.synthetic else 1, opts.num_hiddens,
                      opts.ffn_num_hiddens, opts.num_heads, opts.num_blks, opts.dropout,
                      _MAX_POSITIONS, _LAYER_NORM_EPS)
    if opts.corpus and opts.valid_fraction and opts.eval_every > opts.steps:
        raise ValueError(f'--eval-every {opts.eval_every} exceeds --steps {opts.steps}: no '
                         f'validation would run (0 validates after the last update)')


def check_finetune(opts):
    """Fine-tuning's options (``FinetuneOptions``): the task's settings at ``--max-len``,
    ``--groups``, ``--strategy``, and ``--eval-every`` against the updates ``--train-limit``
    allows. Returns the task (``finetune_task``)."""
    from .tasks.classification import ClassificationTask
    task = finetune_task(opts)
    finetune_groups(opts)
    if opts.strategy == 'rdrop' and not isinstance(task, ClassificationTask):
        raise ValueError(f'--strategy rdrop: R-Drop compares two predicted class '
                         f'distributions; task {task.name!r} has none')
    if opts.eval_every and opts.train_limit:
        from .pretrained.folders import model_width
        opts = opts.for_model(model_width(opts.pretrained))
        most = opts.updates(-(-opts.train_limit // opts.batch_size))
        if opts.eval_every > most:
            raise ValueError(f'--eval-every {opts.eval_every} exceeds the at most {most} '
                             f'updates of --train-limit {opts.train_limit} (--batch-size '
                             f'{opts.batch_size}, --accumulate {opts.accumulate}, --epochs '
                             f'{opts.epochs}): no evaluation would pick the model to keep')
    return task


def finetune_task(opts):
    """The task of ``--task`` with its settings from the options (``--doc-stride``,
    ``--max-query-len``, ``--max-answer-len`` for question-answering), fitted to
    ``--max-len``; ValueError naming an option given to a task that has no such setting."""
    from .tasks import QuestionAnswering, get_task
    settings = {name: getattr(opts, name) for name in QA_OPTIONS
                if getattr(opts, name) is not None}
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


def finetune_groups(opts):
    """``--groups`` as the trainer's parameter groups (None when not given); ValueError
    naming the option unless it is a JSON object of pattern -> settings."""
    if not opts.groups:
        return None
    from .train.param_groups import _check_groups
    try:
        groups = json.loads(opts.groups)
    except json.JSONDecodeError as error:
        raise ValueError(f'--groups {opts.groups!r} is not JSON ({error}); expected e.g. '
                         '\'{"encoder|hidden": {"lr_mult": 0.1}}\'') from None
    if not isinstance(groups, dict):
        raise ValueError(f'--groups {opts.groups!r} is not a JSON object; expected e.g. '
                         '\'{"encoder|hidden": {"lr_mult": 0.1}}\'')
    try:
        _check_groups(groups)
    except ValueError as error:
        raise ValueError(f'--groups: {error}') from None
    except TypeError:  # a comparison of a string lr_mult or wd_mult with a number
        raise ValueError(f'--groups {opts.groups!r}: lr_mult and wd_mult must be numbers') \
            from None
    return groups


def check_outputs(opts):
    """Refuse, before any work, an output folder the job could not replace at its end."""
    from .export.folder import check_export_folder
    from .tasks.saved import check_replaceable as check_task_folder
    from .pretrained.saved import check_pretrained_folder
    if opts.command == 'main':
        pretrained, finetuned, onnx = opts.folders()
        check_pretrained_folder(pretrained)
        check_task_folder(finetuned)
        check_export_folder(onnx)
    elif opts.command == 'pretrain':
        check_pretrained_folder(opts.out)
    elif opts.command == 'finetune':
        check_task_folder(opts.out)
    elif opts.command == 'export' and opts.to == 'hf':
        _check_hf_export(opts)
    elif opts.command == 'export':
        check_export_folder(opts.out)
    if opts.command in ('main', 'pretrain', 'finetune') and opts.resume:
        _check_resumable(opts)


def _check_hf_export(opts):
    """``export --to hf``: no ONNX-only option, and an ``--out`` it may replace."""
    from .pretrained.hf import check_hf_folder
    for name in ONNX_ONLY:
        if getattr(opts, name):
            option = '--' + name.replace('_', '-')
            raise ValueError(f'{option} applies to --to onnx (the ONNX model and its check '
                             f'under onnxruntime); --to hf writes the model\'s weights as they '
                             f'are: leave {option} out')
    check_hf_folder(opts.out)


def _check_resumable(opts):
    """``--resume`` with no checkpoint to resume from fails before any work."""
    from .train.state import CheckpointError, CheckpointManager
    checkpoints = CheckpointManager(checkpoint_dir(opts))
    if not checkpoints.checkpoints():
        raise CheckpointError(checkpoints.why_empty())


def _check_paths(opts):
    """The files and folders a job writes besides ``--out`` (checked by ``check_outputs``)."""
    from .atomic import check_creatable
    if opts.command in ('main', 'pretrain', 'finetune'):
        folder = checkpoint_dir(opts)
        if not os.path.lexists(folder):
            check_creatable(folder)
        elif not os.path.isdir(folder):
            raise NotADirectoryError(f'checkpoint folder {folder!r} is a file; expected a '
                                     f'folder (--checkpoint-dir)')
    if opts.command in ('main', 'pretrain') and opts.summary:
        if os.path.isdir(opts.summary):
            raise IsADirectoryError(f'--summary {opts.summary} is a folder; expected the path '
                                    f'of a file to write')
        if not os.path.lexists(opts.summary):
            check_creatable(opts.summary, 'file')
    if opts.command == 'pretrain' and opts.save_hf:
        from .pretrained.hf import check_hf_folder
        check_hf_folder(opts.save_hf)
    if opts.command == 'split':
        from .tasks.group_splits import check_split_folder
        check_split_folder(opts.out)
