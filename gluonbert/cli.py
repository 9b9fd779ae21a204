"""The command line: ``python -m gluonbert`` (or ``gluonbert``) with one subcommand per job.

    gluonbert main                 the README's main job, end to end on the embedded default
    gluonbert pretrain --help      pretrain a BERT on WikiText-2 (MLM + NSP)
    gluonbert finetune --help      fine-tune a pretrained folder on a task and your own files
    gluonbert evaluate --help      the task metrics of a fine-tuned folder on a labelled file
    gluonbert export --help        ONNX export of a fine-tuned folder (or --to hf: an HF folder)
    gluonbert predict --help       predictions of a fine-tuned folder for lines of text
    gluonbert split --help         train/dev/test files from one labelled file, by passage

A subcommand's options are the fields of its dataclass in ``options`` (what the jobs take);
every subcommand takes ``--config FILE`` (JSON or TOML: option names with underscores, as
written by ``--save-config FILE``), whose values become the defaults that command-line
options override. User errors (bad options or config files, missing data or checkpoints)
print one line and exit with status 2.
"""
import argparse
import dataclasses
import json
import os
import sys
import tomllib

from . import preflight, runtime
from .atomic import write_json
from .option_types import check_memory
from .options import (COMMANDS, GROUPS, MAIN_FINETUNE, ExportOptions, FinetuneOptions,
                      check_value)

# What a user can fix: bad values, missing or unwritable files and folders, a full disk
USER_ERRORS = (ValueError, OSError)


def _config_options(parser):
    parser.add_argument('--config', metavar='FILE',
                        help='read options from a JSON or TOML file (command-line options win)')
    parser.add_argument('--save-config', metavar='FILE',
                        help='write the effective options to FILE (JSON) to re-run them later')


def _add_options(parser, cls):
    """The fields of the options dataclass ``cls`` (``options``) as ``parser``'s options,
    each in its --help group (``options.GROUPS``)."""
    fields = dataclasses.fields(cls)
    groups = {title: parser.add_argument_group(title) for title in GROUPS
              if any(f.metadata['group'] == title for f in fields)}
    for field in fields:
        meta = field.metadata
        required = field.default is dataclasses.MISSING
        kwargs = dict(help=meta['help'])
        if not required:
            kwargs['default'] = field.default
        if field.default is False:
            kwargs['action'] = 'store_true'
        else:
            kwargs.update(type=meta['type'], choices=meta['choices'], metavar=meta['metavar'])
            if meta['append']:
                kwargs['action'] = 'append'
        if meta['positional']:
            names = [field.name]
            if not required:
                kwargs['nargs'] = '?'
        else:
            names = ['--' + field.name.replace('_', '-')]
            kwargs['required'] = required
        groups.get(meta['group'], parser).add_argument(*names, **kwargs)


def build_parser():
    parser = argparse.ArgumentParser(
        prog='gluonbert', description='BERT pretraining and fine-tuning in MXNet Gluon, '
        'mirroring the d2l chapters.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    commands.add_parser(
        'main', help='the main job: pretrain, fine-tune on NLI, export to ONNX',
        description='Pretrain a small BERT on WikiText-2, fine-tune it on SNLI, export the '
        'classifier to ONNX and check it under onnxruntime. Uses the full data when found '
        '(see docs/data.md), else the real slices shipped with gluonbert.')
    commands.add_parser(
        'pretrain', help='pretrain BERT on WikiText-2 (MLM + NSP)',
        description="Pretrain BERT on WikiText-2 as d2l's chapter does; writes a d2l-style "
        'folder (vocab.json, pretrained.params) plus config.json and a loss plot. Defaults '
        'are the chapter\'s.')
    commands.add_parser(
        'finetune', help='fine-tune a pretrained BERT on a task and your own files',
        description='Fine-tune a pretrained BERT on a task: evaluate on dev every epoch (or '
        '--eval-every updates), keep the best model by the task\'s main metric in --out with '
        'its tokenizer, stop early with --patience, resume with --resume, and score the best '
        'model on --test. The defaults are a recipe that works from a small BERT pretrained '
        'for minutes (chapters/natural_language_inference_bert.py keeps the book\'s).')
    commands.add_parser(
        'evaluate', help='the task metrics of a fine-tuned folder on a labelled file',
        description='Score a folder written by `gluonbert finetune` on a labelled file '
        '(--test; snli and sick default to their test split), tokenized as in training.')
    commands.add_parser(
        'export', help='export a fine-tuned folder to ONNX, verified under onnxruntime',
        description='Export a folder written by `gluonbert finetune` to ONNX (dynamic batch '
        'and length; vocab, labels and tokenizer beside it) and check onnxruntime against '
        'MXNet on random and real examples; refused when they differ by more than 1e-4. '
        'Serve the result without MXNet with `python export/predict.py FOLDER input.txt`. '
        'With --to hf, write an HF transformers folder instead (BertForSequenceClassification, '
        'BertForTokenClassification, BertForQuestionAnswering or BertForMultipleChoice, with '
        'vocab.txt and tokenizer.json).')
    commands.add_parser(
        'predict', help='predictions of a fine-tuned folder for lines of text',
        description='Read lines (a text, or text<TAB>text; a sentence of words for '
        'token-classification; question<TAB>context for question-answering; '
        'context<TAB>question<TAB>ending0<TAB>ending1... for multiple-choice) and print '
        'predictions as export/predict.py does, tokenized as in training.')
    commands.add_parser(
        'split', help='split one labelled file into train/dev/test, each passage on one side',
        description='Split a SQuAD v1.1 JSON file by article title, or a CSV/TSV/JSON Lines '
        'file by the values of one column (--by), into OUT/train, dev and test files, so '
        'that no passage is both trained and tested. Same file, fractions and seed: same '
        'split. OUT must be new.')
    for name, sub in commands.choices.items():
        _add_options(sub, COMMANDS[name])
        _config_options(sub)
    parser.subcommands = commands.choices
    return parser


_NOT_CONFIG = ('command', 'config', 'save_config')


def read_config(path, cls):
    """Option values from a JSON or TOML file, checked against the fields of the options
    dataclass ``cls`` as a script's values are (``options.check_value``)."""
    try:
        with open(path, 'rb') as f:
            values = tomllib.load(f) if path.endswith('.toml') else json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'config file {path} not found') from None
    except IsADirectoryError:
        raise ValueError(f'config file {path} is a folder; expected a JSON or TOML file') \
            from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f'config file {path} is not valid JSON/TOML: {error}') from None
    if not isinstance(values, dict):
        raise ValueError(f'config file {path} must hold a table of option names and values')
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in values.items():
        field = fields.get(key)
        if field is None:
            raise ValueError(f'config file {path}: unknown option {key!r}; expected one of '
                             f'{", ".join(sorted(fields))}')
        if value is None and field.default in (None, dataclasses.MISSING):
            continue  # an unset option, as --save-config writes it
        try:
            values[key] = check_value(key, value, field)
        except ValueError as error:
            raise ValueError(f'config file {path}: {error}') from None
    return values


def parse_args(argv=None):
    """The options dataclass (``options.COMMANDS``) of ``argv``'s command, with a
    ``--config`` file's values as defaults (required options included); check that the job
    fits in memory; save ``--save-config``."""
    parser = build_parser()
    subparsers = parser.subcommands.values()
    required = {sub: [a for a in sub._actions if a.required] for sub in subparsers}
    for actions in required.values():  # a config file may give them: checked below
        for action in actions:
            action.required = False
    args = parser.parse_args(argv)
    subparser, cls = parser.subcommands[args.command], COMMANDS[args.command]
    if args.config:
        subparser.set_defaults(**read_config(args.config, cls))
        args = parser.parse_args(argv)
    missing = [a.option_strings[0] for a in required[subparser]
               if getattr(args, a.dest) is None]
    if missing:
        subparser.error(f'the following arguments are required: {", ".join(missing)} (on the '
                        f'command line or in --config)')
    opts = cls(**{k: v for k, v in vars(args).items() if k not in _NOT_CONFIG})
    if opts.command in ('main', 'pretrain'):
        check_memory(opts.batch_size, opts.max_len, opts.num_hiddens, opts.ffn_num_hiddens,
                     opts.num_heads, opts.num_blks)
    if args.save_config:
        write_json(args.save_config, opts.as_dict())
    return opts


def finetune_options(pretrained, **overrides):
    """``FinetuneOptions`` for ``pretrained`` with ``overrides``: for scripts that run
    ``jobs.finetune`` without a command line."""
    names = {f.name for f in dataclasses.fields(FinetuneOptions)}
    for key in overrides:
        if key not in names:
            raise ValueError(f'finetune has no option {key!r}')
    return FinetuneOptions(**dict(overrides, pretrained=pretrained))


def run_main(opts):
    """The README's main job: pretrain, fine-tune the result on NLI, export it to ONNX."""
    from . import jobs
    from .data.nli import locate_snli
    print('== stage 1/3: pretrain a small BERT on WikiText-2')
    jobs.pretrain(opts.pretrain_options())
    print('== stage 2/3: fine-tune it on SNLI (the d2l NLI chapter)')
    _, finetuned, onnx_folder = opts.folders()
    snli, _ = locate_snli(fallback='embedded')  # once: the export checks the same files
    finetune_opts = finetune_options(
        opts.out, **dict(MAIN_FINETUNE, max_len=opts.max_len, train_limit=opts.finetune_limit,
                         epochs=opts.finetune_epochs, devices=opts.devices, seed=opts.seed,
                         data_dir=snli, out=finetuned))
    jobs.finetune(finetune_opts)
    print('== stage 3/3: export the classifier to ONNX and check it under onnxruntime')
    jobs.export(ExportOptions(model=finetune_opts.out, data_dir=snli, out=onnx_folder))
    print(f'serve it without MXNet: python export/predict.py {onnx_folder} pairs.tsv')


def main(argv=None):
    try:
        opts = parse_args(argv)
        preflight.check(opts)  # all that needs no data, --out included
    except USER_ERRORS as error:
        print(f'gluonbert: error: {error}', file=sys.stderr)
        return 2
    # Where threads matter, to stderr; a launcher's workers leave it to the chief (see jobs)
    if opts.command in ('main', 'pretrain', 'finetune') and not os.environ.get('DMLC_ROLE'):
        print(runtime.describe(), file=sys.stderr)
    try:
        from . import jobs
        job = dict(main=run_main, pretrain=jobs.pretrain, finetune=jobs.finetune,
                   evaluate=jobs.evaluate, export=jobs.export, predict=jobs.predict_lines,
                   split=jobs.split)[opts.command]
        job(opts)
    except USER_ERRORS as error:
        print(f'gluonbert {opts.command}: error: {error}', file=sys.stderr)
        return 2
    return 0
