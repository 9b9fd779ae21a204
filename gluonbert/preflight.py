"""The checks that need no data, run before any data set is located, read or preprocessed.

A bad option fails at once with its own message: never after minutes of preprocessing, and
never behind "SNLI not found" on a machine without the data (issue 30). ``check(args)`` runs,
for a parsed subcommand, in this order:

1. ``--devices`` and ``--amp`` (pretrain, finetune, main, evaluate);
2. the options of the command: the architecture and the data-source options of pretraining
   (``--corpus`` or ``--synthetic``, the options that need them, ``--eval-every`` against
   ``--steps``); the task's settings at ``--max-len``, ``--groups``, ``--strategy`` and
   ``--eval-every`` against the updates ``--train-limit`` allows when fine-tuning; split's
   fractions;
3. ``--out`` and ``--resume`` (``cli.check_outputs``);
4. the files and folders written besides ``--out``: ``--checkpoint-dir``, ``--summary``,
   ``--save-hf``, split's ``--out``.

The command line runs it before any job (parsing has checked each option's value and that a
training step fits in memory). The jobs run the checks of their options too
(``check_pretrain``, ``check_finetune``), so that scripts calling them without the command
line fail as early.
"""
import json
import os

# BERTModel's defaults, which the pretraining job builds the model with
_MAX_POSITIONS, _LAYER_NORM_EPS = 1000, 1e-5


def check(args):
    """Every data-free check of the parsed subcommand ``args``, in the order above."""
    from .cli import check_outputs
    from .devices import parse_devices
    from .train.mixed_precision import check_option
    if getattr(args, 'devices', None) is not None:
        check_option(getattr(args, 'amp', None), parse_devices(args.devices))
    if args.command in ('main', 'pretrain'):
        check_pretrain(args)
    elif args.command == 'finetune':
        check_finetune(args)
    elif args.command == 'split':
        from .tasks.group_splits import split_fractions
        split_fractions(args.dev_fraction, args.test_fraction)
    check_outputs(args)
    _check_paths(args)


def check_pretrain(opts):
    """Pretraining's options: the architecture of a new model, the data-source options, and
    ``--eval-every`` of a run that validates."""
    from .corpus_pretraining import check_sources
    from .model.bert import check_options
    check_sources(opts)
    if not getattr(opts, 'pretrained', None):  # a continued model keeps its architecture
        check_options(opts.vocab_size if opts.synthetic else 1, opts.num_hiddens,
                      opts.ffn_num_hiddens, opts.num_heads, opts.num_blks, opts.dropout,
                      _MAX_POSITIONS, _LAYER_NORM_EPS)
    if getattr(opts, 'corpus', None) and opts.valid_fraction and opts.eval_every > opts.steps:
        raise ValueError(f'--eval-every {opts.eval_every} exceeds --steps {opts.steps}: no '
                         f'validation would run (0 validates after the last update)')


def check_finetune(opts):
    """Fine-tuning's options: the task's settings at ``--max-len``, ``--groups``,
    ``--strategy``, and ``--eval-every`` against the updates ``--train-limit`` allows.
    Returns the task (``jobs.finetune_task``)."""
    from .jobs import finetune_task
    from .tasks.classification import ClassificationTask
    task = finetune_task(opts)
    finetune_groups(opts)
    if opts.strategy == 'rdrop' and not isinstance(task, ClassificationTask):
        raise ValueError(f'--strategy rdrop: R-Drop compares two predicted class '
                         f'distributions; task {task.name!r} has none')
    if opts.eval_every and opts.train_limit:
        batches = -(-opts.train_limit // opts.batch_size)
        most = opts.epochs * -(-batches // opts.accumulate)
        if opts.eval_every > most:
            raise ValueError(f'--eval-every {opts.eval_every} exceeds the at most {most} '
                             f'updates of --train-limit {opts.train_limit} (--batch-size '
                             f'{opts.batch_size}, --accumulate {opts.accumulate}, --epochs '
                             f'{opts.epochs}): no evaluation would pick the model to keep')
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


def _check_paths(args):
    """The files and folders a job writes besides ``--out`` (checked by ``cli.check_outputs``)."""
    from .atomic import check_creatable
    if hasattr(args, 'checkpoint_dir'):
        from .jobs import checkpoint_dir
        folder = checkpoint_dir(args)
        if not os.path.lexists(folder):
            check_creatable(folder)
        elif not os.path.isdir(folder):
            raise NotADirectoryError(f'checkpoint folder {folder!r} is a file; expected a '
                                     f'folder (--checkpoint-dir)')
    if getattr(args, 'summary', None):
        if os.path.isdir(args.summary):
            raise IsADirectoryError(f'--summary {args.summary} is a folder; expected the path '
                                    f'of a file to write')
        if not os.path.lexists(args.summary):
            check_creatable(args.summary, 'file')
    if getattr(args, 'save_hf', None):
        from .pretrained.hf import check_hf_folder
        check_hf_folder(args.save_hf)
    if args.command == 'split':
        from .tasks.group_splits import check_split_folder
        check_split_folder(args.out)
