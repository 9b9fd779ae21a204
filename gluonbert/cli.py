"""The command line: ``python -m gluonbert`` (or ``gluonbert``) with one subcommand per job.

    gluonbert main                 the README's main job, end to end on the embedded default
    gluonbert pretrain --help      pretrain a BERT on WikiText-2 (MLM + NSP)
    gluonbert finetune --help      fine-tune a pretrained folder on SNLI or SICK
    gluonbert evaluate --help      accuracy and confusion matrix of a fine-tuned folder
    gluonbert export --help        ONNX export of a fine-tuned folder, checked under onnxruntime
    gluonbert predict --help       labels and probabilities of sentence pairs

Every subcommand takes ``--config FILE`` (JSON or TOML: option names with underscores, as
written by ``--save-config FILE``), whose values become the defaults that command-line
options override. User errors (bad options or config files, missing data or checkpoints)
print one line and exit with status 2.
"""
import argparse
import json
import os
import sys
import tomllib

from . import runtime
from .distributed.kvstore import KVSTORE_TYPES

USER_ERRORS = (ValueError, FileNotFoundError)

CHAPTER_PRETRAIN = dict(num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_blks=2,
                        dropout=0.2, max_len=64, batch_size=512, steps=50,
                        out='runs/pretrained')
# The chapter's fine-tuning: lr 1e-4, 5 epochs, batch 512, max_len 128
CHAPTER_FINETUNE = dict(lr=1e-4, epochs=5, batch_size=512, max_len=128, dropout=0.1,
                        out='runs/finetuned')
# The main job: the chapter's model on smaller batches, so that it finishes in minutes on 2 cores
MAIN_PRETRAIN = dict(CHAPTER_PRETRAIN, batch_size=128, steps=200, out='runs/main/pretrained')
MAIN_FINETUNE = dict(CHAPTER_FINETUNE, lr=1e-3, epochs=1, batch_size=64, max_len=64,
                     out='runs/main/finetuned')


def _config_options(parser):
    parser.add_argument('--config', metavar='FILE',
                        help='read options from a JSON or TOML file (command-line options win)')
    parser.add_argument('--save-config', metavar='FILE',
                        help='write the effective options to FILE (JSON) to re-run them later')


def _common(parser, out):
    parser.add_argument('--devices', default='cpu',
                        help='cpu, gpu (all GPUs), or a list such as cpu:0,cpu:1 or gpu:0,gpu:1 '
                        '(default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='fixes data order, masking and '
                        'initialisation (default: %(default)s)')
    parser.add_argument('--out', default=out, help='folder to write (default: %(default)s)')


def _pretrain_options(parser, d):
    model = parser.add_argument_group('model (the arguments of d2l\'s BERTModel)')
    model.add_argument('--num-hiddens', type=int, default=d['num_hiddens'])
    model.add_argument('--ffn-num-hiddens', type=int, default=d['ffn_num_hiddens'])
    model.add_argument('--num-heads', type=int, default=d['num_heads'])
    model.add_argument('--num-blks', type=int, default=d['num_blks'])
    model.add_argument('--dropout', type=float, default=d['dropout'])
    model.add_argument('--activation', choices=['relu', 'gelu'], default='relu',
                       help='relu as d2l, gelu as BERT (default: %(default)s)')
    data = parser.add_argument_group('data')
    data.add_argument('--data-dir', help='folder holding wiki.train.tokens (default: '
                      '$GLUONBERT_DATA, ../shared/data, d2l\'s ../data, then d2l\'s download)')
    data.add_argument('--max-len', type=int, default=d['max_len'])
    data.add_argument('--batch-size', type=int, default=d['batch_size'])
    data.add_argument('--masking', choices=['token', 'whole_word', 'span'], default='token',
                      help='MLM masking: d2l\'s per token, whole words, or spans')
    data.add_argument('--synthetic', action='store_true',
                      help='random batches of the same layout instead of WikiText-2 (for '
                      'benchmarks and tests of the training path; saves no model)')
    data.add_argument('--vocab-size', type=int, default=20256,
                      help='--synthetic: the vocabulary size (default: %(default)s, '
                      "WikiText-2's)")
    train = parser.add_argument_group('training')
    train.add_argument('--steps', type=int, default=d['steps'])
    train.add_argument('--optimizer', default='adam',
                       help='adam (the chapter\'s), adamw, bertadam, or an MXNet optimizer '
                       'such as sgd (default: %(default)s)')
    train.add_argument('--lr', type=float, default=1e-3,
                       help="the learning rate (default: %(default)s; d2l's 0.01 collapses "
                       "the <cls> encoding of this small model within 150 steps, leaving "
                       "nothing for fine-tuning)")
    train.add_argument('--weight-decay', type=float, default=0.0,
                       help='off for biases and LayerNorm (default: %(default)s, as the chapter)')
    train.add_argument('--log-every', type=int, default=10,
                       help='steps between logged losses (default: %(default)s)')
    _run_options(parser, checkpoint_every=100)
    workers = parser.add_argument_group('several workers (python -m gluonbert.distributed.launch '
                                        '... -- gluonbert pretrain ...)')
    workers.add_argument('--kvstore', choices=[k for k in KVSTORE_TYPES if k != 'dist_async'],
                         help='default: dist_sync under the launcher, else device (dist_async '
                         'updates on the servers, where BERTTrainer cannot check the step)')
    workers.add_argument('--timeout', type=float, default=300.0,
                         help='seconds without a completed step (or to join the job) before a '
                         'worker exits with status 124 (default: %(default)s)')
    workers.add_argument('--summary', metavar='FILE',
                         help='write a JSON summary (step times, throughput) here')
    _common(parser, d['out'])


def _run_options(parser, checkpoint_every):
    run = parser.add_argument_group('checkpoints and resuming')
    run.add_argument('--checkpoint-dir', help='where checkpoints and the metrics log go '
                     '(default: OUT.checkpoints, beside --out)')
    run.add_argument('--checkpoint-every', type=int, default=checkpoint_every,
                     help='updates between checkpoints; 0: only at the end (and at the end of '
                     'each epoch when fine-tuning) (default: %(default)s)')
    run.add_argument('--resume', action='store_true',
                     help='continue from the newest checkpoint in --checkpoint-dir, to the '
                     'same parameters as an uninterrupted run')


def _finetune_options(parser, d, pretrained_required=True):
    parser.add_argument('--pretrained', required=pretrained_required,
                        help='pretrained folder (vocab.json, pretrained.params, config.json)')
    parser.add_argument('--task', choices=['snli', 'sick'], default='snli',
                        help='snli: train on dev, test on test (the files here); sick: its '
                        'TRAIN and TEST splits (default: %(default)s)')
    parser.add_argument('--data-dir', help='folder of the task\'s files (default: resolved '
                        'as for WikiText-2)')
    parser.add_argument('--max-len', type=int, default=d['max_len'])
    parser.add_argument('--batch-size', type=int, default=d['batch_size'])
    parser.add_argument('--epochs', type=int, default=d['epochs'])
    parser.add_argument('--lr', type=float, default=d['lr'])
    parser.add_argument('--dropout', type=float, default=d['dropout'])
    parser.add_argument('--strategy', choices=['plain', 'rdrop', 'fgm'], default='plain',
                        help='R-Drop or FGM embedding noise (default: %(default)s)')
    knobs = parser.add_argument_group('trainer (gluonbert.train.trainer.BERTTrainer)')
    knobs.add_argument('--optimizer', choices=['adamw', 'bertadam', 'adam'], default='adamw',
                       help='adamw: decoupled weight decay, bias-corrected; bertadam: as BERT, '
                       'no bias correction; adam: L2 through the gradient (default: '
                       '%(default)s)')
    knobs.add_argument('--weight-decay', type=float, default=0.01,
                       help='off for biases and LayerNorm (default: %(default)s)')
    knobs.add_argument('--schedule', default='linear', choices=['constant',
                       'constant_with_warmup', 'linear', 'cosine', 'cosine_with_restarts',
                       'polynomial'], help='learning-rate schedule, HF names (default: '
                       '%(default)s)')
    knobs.add_argument('--warmup-steps', type=int, default=0)
    knobs.add_argument('--groups', help='JSON of parameter groups by name pattern, e.g. '
                       '\'{"encoder|hidden": {"lr_mult": 0.1}, "^output": {"lr_mult": 1}}\'')
    knobs.add_argument('--layerwise-decay', type=float,
                       help='lr x decay ** (num_layers + 2 - depth), embeddings at depth 0')
    knobs.add_argument('--freeze', help='pattern of parameter names not to train')
    knobs.add_argument('--clip', type=float, help='maximum global gradient norm')
    knobs.add_argument('--accumulate', type=int, default=1,
                       help='micro-batches per update (default: %(default)s)')
    knobs.add_argument('--stale', choices=['error', 'warn', 'skip'], default='error',
                       help='what a parameter without a fresh gradient does (default: '
                       '%(default)s)')
    knobs.add_argument('--show-groups', action='store_true',
                       help="print every parameter's effective lr and wd")
    parser.add_argument('--from-scratch', action='store_true',
                        help='re-initialize the BERT randomly (to measure what pretraining '
                        'brings)')
    parser.add_argument('--train-limit', type=int, default=0, help='use the first N '
                        'training pairs (0: all)')
    parser.add_argument('--test-limit', type=int, default=0, help='use the first N test '
                        'pairs (0: all)')
    _run_options(parser, checkpoint_every=0)
    _common(parser, d['out'])


def build_parser():
    parser = argparse.ArgumentParser(
        prog='gluonbert', description='BERT pretraining and fine-tuning in MXNet Gluon, '
        'mirroring the d2l chapters.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    main = commands.add_parser(
        'main', help='the main job: pretrain, fine-tune on NLI, export to ONNX',
        description='Pretrain a small BERT on WikiText-2, fine-tune it on SNLI, export the '
        'classifier to ONNX and check it under onnxruntime. Uses the full data when found '
        '(see README, Data), else the real slices shipped with gluonbert.')
    _pretrain_options(main, MAIN_PRETRAIN)
    main.add_argument('--finetune-epochs', type=int, default=MAIN_FINETUNE['epochs'])
    main.add_argument('--finetune-limit', type=int, default=0,
                      help='fine-tune on the first N pairs (0: all)')
    pretrain = commands.add_parser(
        'pretrain', help='pretrain BERT on WikiText-2 (MLM + NSP)',
        description="Pretrain BERT on WikiText-2 as d2l's chapter does; writes a d2l-style "
        'folder (vocab.json, pretrained.params) plus config.json and a loss plot. Defaults '
        'are the chapter\'s.')
    _pretrain_options(pretrain, CHAPTER_PRETRAIN)
    pretrain.add_argument('--fallback', choices=['embedded'],
                          help='use the embedded slice when WikiText-2 is not found')
    finetune = commands.add_parser(
        'finetune', help='fine-tune a pretrained BERT on SNLI or SICK',
        description="Fine-tune as d2l's NLI chapter (BERTClassifier: <cls> features through "
        "hidden into a 3-way output). Defaults are the chapter's.")
    _finetune_options(finetune, CHAPTER_FINETUNE)
    finetune.add_argument('--fallback', choices=['embedded'],
                          help='use the embedded SNLI slice when SNLI is not found')
    evaluate = commands.add_parser(
        'evaluate', help='test accuracy and confusion matrix of a fine-tuned folder',
        description='Evaluate a folder written by `gluonbert finetune` on a task\'s test split.')
    evaluate.add_argument('--model', required=True, help='fine-tuned folder')
    evaluate.add_argument('--task', choices=['snli', 'sick'], default='snli')
    evaluate.add_argument('--data-dir')
    evaluate.add_argument('--batch-size', type=int, default=256)
    evaluate.add_argument('--test-limit', type=int, default=0)
    evaluate.add_argument('--devices', default='cpu')
    export = commands.add_parser(
        'export', help='export a fine-tuned folder to ONNX, verified under onnxruntime',
        description='Export a folder written by `gluonbert finetune` to ONNX (dynamic batch '
        'and length, vocab and labels beside it) and check onnxruntime against MXNet on random '
        'and real pairs; refused when they differ by more than 1e-4. Serve the result without '
        'MXNet with `python export/predict.py FOLDER pairs.tsv`.')
    export.add_argument('--model', required=True, help='fine-tuned folder')
    export.add_argument('--task', choices=['snli', 'sick'], default='snli',
                        help='where the real pairs for the check come from')
    export.add_argument('--data-dir')
    export.add_argument('--int8', action='store_true',
                        help='also write a dynamic-int8 quantized model.int8.onnx')
    export.add_argument('--out', default='runs/onnx', help='folder to write (default: '
                        '%(default)s)')
    predict = commands.add_parser(
        'predict', help='labels and probabilities of sentence pairs with a fine-tuned folder',
        description='Read premise<TAB>hypothesis lines and print the predicted label and the '
        'probability of each label, tokenized as in training.')
    predict.add_argument('--model', required=True, help='fine-tuned folder')
    predict.add_argument('pairs', nargs='?', default='-',
                         help='TSV file of premise<TAB>hypothesis lines (default: stdin)')
    for sub in commands.choices.values():
        _config_options(sub)
    parser.subcommands = commands.choices
    return parser


_NOT_CONFIG = ('command', 'config', 'save_config')


def read_config(path, subparser):
    """Option values from a JSON or TOML file, checked against ``subparser``'s options."""
    try:
        with open(path, 'rb') as f:
            values = tomllib.load(f) if path.endswith('.toml') else json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'config file {path} not found') from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f'config file {path} is not valid JSON/TOML: {error}') from None
    if not isinstance(values, dict):
        raise ValueError(f'config file {path} must hold a table of option names and values')
    actions = {a.dest: a for a in subparser._actions if a.dest not in _NOT_CONFIG + ('help',)}
    for key, value in values.items():
        action = actions.get(key)
        if action is None:
            raise ValueError(f'config file {path}: unknown option {key!r}; expected one of '
                             f'{", ".join(sorted(actions))}')
        if value is None and action.default is None:  # an unset option, as --save-config writes
            continue
        expected = bool if isinstance(action, argparse._StoreTrueAction) else \
            (action.type or str)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValueError(f'config file {path}: option {key!r} is {value!r}; expected '
                             f'{expected.__name__}')
        if action.choices and value not in action.choices:
            raise ValueError(f'config file {path}: option {key!r} is {value!r}; expected one '
                             f'of {list(action.choices)}')
        values[key] = value
    return values


def parse_args(argv=None):
    """Parse ``argv``, with a ``--config`` file's values as defaults; save ``--save-config``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        subparser = parser.subcommands[args.command]
        subparser.set_defaults(**read_config(args.config, subparser))
        args = parser.parse_args(argv)
    if args.save_config:
        with open(args.save_config, 'w', encoding='utf-8') as f:
            json.dump({k: v for k, v in vars(args).items() if k not in _NOT_CONFIG}, f,
                      indent=1)
    return args


def finetune_options(pretrained, **overrides):
    """The ``finetune`` subcommand's options for ``pretrained``, with ``overrides``: for
    scripts that run ``jobs.finetune`` without a command line."""
    opts = build_parser().subcommands['finetune'].parse_args(['--pretrained', pretrained])
    for key, value in overrides.items():
        if not hasattr(opts, key):
            raise ValueError(f'finetune has no option {key!r}')
        setattr(opts, key, value)
    return opts


def run_main(opts):
    """The README's main job: pretrain, fine-tune the result on NLI, export it to ONNX."""
    from . import jobs
    print('== stage 1/3: pretrain a small BERT on WikiText-2')
    jobs.pretrain(opts, fallback='embedded')
    print('== stage 2/3: fine-tune it on SNLI (the d2l NLI chapter)')
    finetune_opts = finetune_options(
        opts.out, **dict(MAIN_FINETUNE, train_limit=opts.finetune_limit,
                         epochs=opts.finetune_epochs, devices=opts.devices, seed=opts.seed,
                         out=os.path.join(os.path.dirname(opts.out.rstrip('/')), 'finetuned')))
    jobs.finetune(finetune_opts, fallback='embedded')
    print('== stage 3/3: export the classifier to ONNX and check it under onnxruntime')
    onnx_folder = os.path.join(os.path.dirname(opts.out.rstrip('/')), 'onnx')
    jobs.export(argparse.Namespace(model=finetune_opts.out, task='snli', data_dir=None,
                                   int8=False, out=onnx_folder), fallback='embedded')
    print(f'serve it without MXNet: python export/predict.py {onnx_folder} pairs.tsv')


def main(argv=None):
    try:
        args = parse_args(argv)
    except USER_ERRORS as error:
        print(f'gluonbert: error: {error}', file=sys.stderr)
        return 2
    # Where threads matter, to stderr; a launcher's workers leave it to the chief (see jobs)
    if args.command in ('main', 'pretrain', 'finetune') and not os.environ.get('DMLC_ROLE'):
        print(runtime.describe(), file=sys.stderr)
    try:
        from . import jobs
        if args.command == 'main':
            run_main(args)
        elif args.command == 'pretrain':
            jobs.pretrain(args, fallback=args.fallback)
        elif args.command == 'finetune':
            jobs.finetune(args, fallback=args.fallback)
        elif args.command == 'evaluate':
            jobs.evaluate(args)
        elif args.command == 'export':
            jobs.export(args)
        elif args.command == 'predict':
            jobs.predict_pairs(args)
    except USER_ERRORS as error:
        print(f'gluonbert {args.command}: error: {error}', file=sys.stderr)
        return 2
    return 0
