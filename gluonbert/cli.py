"""The command line: ``python -m gluonbert`` (or ``gluonbert``) with one subcommand per job.

    gluonbert main                 the README's main job, end to end on the embedded default
    gluonbert pretrain --help      pretrain a BERT on WikiText-2 (MLM + NSP)
    gluonbert finetune --help      fine-tune a pretrained folder on a task and your own files
    gluonbert evaluate --help      the task metrics of a fine-tuned folder on a labelled file
    gluonbert export --help        ONNX export of a fine-tuned folder (or --to hf: an HF folder)
    gluonbert predict --help       predictions of a fine-tuned folder for lines of text
    gluonbert split --help         train/dev/test files from one labelled file, by passage

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
from .atomic import write_json
from .data.masking import MASKING_STRATEGIES, MaskingConfig
from .data.packing import SHORT_SEQ_PROB
from .data.preprocess import PreprocessSettings
from .model.transformer import ACTIVATIONS
from .option_types import (OptionType, check_memory, decay, max_len, non_negative_float,
                           non_negative_int, pattern, positive_float, positive_int,
                           probability, seed)
from .optimizer import OPTIMIZERS
from .train.mixed_precision import AUTO, AUTO_MIN_WIDTH, OFF, OPTION_NAMES
from .train.recipes import FINETUNE_RECIPE, LARGE_MODEL_LR, SMALL_MODEL_LR, SMALL_MODEL_WIDTH
from .train.schedules import SCHEDULES
from .train.stale import POLICIES
from .tasks import TASKS
from .distributed.kvstore import KVSTORE_TYPES

# What a user can fix: bad values, missing or unwritable files and folders, a full disk
USER_ERRORS = (ValueError, OSError)

CHAPTER_PRETRAIN = dict(num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_blks=2,
                        dropout=0.2, max_len=64, batch_size=512, steps=50,
                        out='runs/pretrained')
# The command line's fine-tuning recipe (train/recipes.py; the chapter scripts keep the book's)
FINETUNE = dict(FINETUNE_RECIPE, out='runs/finetuned')
# The main job: the chapter's model on smaller batches, so that it finishes in minutes on 2 cores;
# fine-tuned for the recipe's 8 epochs at lr 1e-3 (one epoch of the embedded slice's 2,700 pairs,
# 43 updates, left it at the majority class), on at most 10,000 pairs (d2l's SNLI has 550,000)
MAIN_PRETRAIN = dict(CHAPTER_PRETRAIN, batch_size=128, steps=200, out='runs/main/pretrained')
MAIN_FINETUNE = dict(FINETUNE, lr=1e-3, max_len=64, train_limit=10_000, test_limit=10_000,
                     out='runs/main/finetuned')
# export's formats and the folder each writes by default
EXPORT_OUT = {'onnx': 'runs/onnx', 'hf': 'runs/hf'}
# export's options that only the ONNX export reads (the checks under onnxruntime, int8)
ONNX_ONLY = ('int8', 'data', 'data_dir', 'text_columns', 'label_column', 'format', 'quoting')


def _config_options(parser):
    parser.add_argument('--config', metavar='FILE',
                        help='read options from a JSON or TOML file (command-line options win)')
    parser.add_argument('--save-config', metavar='FILE',
                        help='write the effective options to FILE (JSON) to re-run them later')


def _common(parser, out):
    parser.add_argument('--devices', default='cpu',
                        help='cpu, gpu (all GPUs), or a list such as cpu:0,cpu:1 or gpu:0,gpu:1 '
                        '(default: %(default)s)')
    parser.add_argument('--seed', type=seed, default=0, help='fixes data order, masking and '
                        'initialisation (default: %(default)s)')
    parser.add_argument('--out', default=out, help='folder to write (default: %(default)s)')


def _pretrain_options(parser, d):
    model = parser.add_argument_group('model (the arguments of d2l\'s BERTModel)')
    model.add_argument('--num-hiddens', type=positive_int, default=d['num_hiddens'])
    model.add_argument('--ffn-num-hiddens', type=positive_int, default=d['ffn_num_hiddens'])
    model.add_argument('--num-heads', type=positive_int, default=d['num_heads'])
    model.add_argument('--num-blks', type=positive_int, default=d['num_blks'])
    model.add_argument('--dropout', type=probability, default=d['dropout'])
    model.add_argument('--activation', choices=ACTIVATIONS, default='relu',
                       help='relu as d2l, gelu as BERT (default: %(default)s)')
    data = parser.add_argument_group('data')
    data.add_argument('--data-dir', help='folder holding wiki.train.tokens (default: '
                      '$GLUONBERT_DATA, ../shared/data, d2l\'s ../data, then d2l\'s download)')
    data.add_argument('--max-len', type=max_len, default=d['max_len'],
                      help='pad (or cut) the sentence pairs to this length; the model keeps '
                      'd2l\'s table of 1000 positions (default: %(default)s)')
    data.add_argument('--batch-size', type=positive_int, default=d['batch_size'])
    data.add_argument('--masking', choices=MASKING_STRATEGIES, default='token',
                      help='MLM masking: d2l\'s per token, whole words, or spans')
    data.add_argument('--mask-rate', type=decay, default=MaskingConfig().rate,
                      help='share of the tokens predicted (default: %(default)s)')
    data.add_argument('--synthetic', action='store_true',
                      help='random batches of the same layout instead of WikiText-2 (for '
                      'benchmarks and tests of the training path; saves no model)')
    data.add_argument('--vocab-size', type=positive_int, default=20256,
                      help='--synthetic: the vocabulary size (default: %(default)s, '
                      "WikiText-2's)")
    train = parser.add_argument_group('training')
    train.add_argument('--steps', type=positive_int, default=d['steps'])
    train.add_argument('--optimizer', default='adam',
                       help='adam (the chapter\'s), adamw, bertadam, or an MXNet optimizer '
                       'such as sgd (default: %(default)s)')
    train.add_argument('--lr', type=positive_float, default=1e-3,
                       help="the learning rate (default: %(default)s; d2l's 0.01 collapses "
                       "the <cls> encoding of this small model within 150 steps, leaving "
                       "nothing for fine-tuning)")
    train.add_argument('--weight-decay', type=non_negative_float, default=0.0,
                       help='off for biases and LayerNorm (default: %(default)s, as the chapter)')
    train.add_argument('--log-every', type=positive_int, default=10,
                       help='steps between logged losses (default: %(default)s)')
    train.add_argument('--schedule', choices=SCHEDULES,
                       help='learning-rate schedule, HF names (default: constant; '
                       'constant_with_warmup with --warmup-steps)')
    train.add_argument('--warmup-steps', type=non_negative_int, default=0)
    train.add_argument('--min-lr', type=non_negative_float, default=0.0,
                       help='the floor of a linear or cosine decay (default: %(default)s)')
    train.add_argument('--clip', type=positive_float, help='maximum global gradient norm')
    train.add_argument('--spike-factor', type=positive_float,
                       help='skip an update whose loss is above this many times the running '
                       'median of recent losses (off by default; e.g. 3)')
    train.add_argument('--spike-window', type=positive_int, default=100,
                       help='losses in the running median (default: %(default)s)')
    train.add_argument('--spike-patience', type=positive_int, default=3,
                       help='spikes in a row that roll back to the last checkpoint and skip '
                       'the batches read since (default: %(default)s)')
    _run_options(parser, checkpoint_every=100)
    workers = parser.add_argument_group('several workers (python -m gluonbert.distributed.launch '
                                        '... -- gluonbert pretrain ...)')
    workers.add_argument('--kvstore', choices=[k for k in KVSTORE_TYPES if k != 'dist_async'],
                         help='default: dist_sync under the launcher, else device (dist_async '
                         'updates on the servers, where BERTTrainer cannot check the step)')
    workers.add_argument('--timeout', type=positive_float, default=300.0,
                         help='seconds without a completed step (or to join the job) before a '
                         'worker exits with status 124 (default: %(default)s)')
    workers.add_argument('--summary', metavar='FILE',
                         help='write a JSON summary (step times, throughput) here')
    _common(parser, d['out'])


def _corpus_options(parser):
    corpus = parser.add_argument_group(
        'own corpus and continued pretraining (instead of WikiText-2)')
    corpus.add_argument('--corpus', action='append', metavar='PATH[:WEIGHT]',
                        help='a text file or folder: one document per blank-line-separated '
                        'block (or per line: --doc-per-line); repeat to mix corpora, each '
                        'document used WEIGHT times in expectation (default 1)')
    corpus.add_argument('--doc-per-line', action='store_true',
                        help='every line of the corpora is a document (as in WikiText)')
    corpus.add_argument('--vocab', metavar='VOCAB_TXT',
                        help="a BERT vocab.txt (default: d2l's word vocabulary of the corpus)")
    corpus.add_argument('--learn-vocab', type=positive_int, metavar='SIZE',
                        help='learn a WordPiece vocabulary of about SIZE tokens from the '
                        "corpus (HF's tokenizers)")
    corpus.add_argument('--pretrained', metavar='FOLDER',
                        help='continue pretraining a gluonbert or HF folder (its vocabulary, '
                        'tokenizer, architecture and heads are kept)')
    corpus.add_argument('--add-tokens', metavar='FILE',
                        help='with --pretrained: append these tokens (one per line) to the '
                        'vocabulary, growing the embedding and the MLM decoder')
    corpus.add_argument('--save-hf', metavar='FOLDER',
                        help='also save the result as an HF folder (an HF-shaped model: GELU, '
                        'embedding LayerNorm; e.g. one continued from an HF folder)')
    corpus.add_argument('--valid-fraction', type=probability, default=0.05,
                        help='share of the documents held out for validation, masked once '
                        'with a fixed seed (default: %(default)s)')
    corpus.add_argument('--eval-every', type=non_negative_int, default=0,
                        help='updates between validations (MLM loss, perplexity, MLM and NSP '
                        'accuracy); 0: after the last update (default: %(default)s)')
    corpus.add_argument('--short-seq-prob', type=probability, default=SHORT_SEQ_PROB,
                        help="share of examples packed to a shorter random length, as BERT's "
                        '(default: %(default)s)')
    corpus.add_argument('--shard-size', type=positive_int,
                        default=PreprocessSettings.shard_size,
                        help='examples per preprocessed shard; each worker of a distributed '
                        'run reads its own shards, so have several per worker (default: '
                        '%(default)s)')


def _amp_option(parser):
    # off by default: bench/real_finetune.py on an AMX Xeon measured MiniLM's bf16 fine-tuning
    # at 0.75x its float32 (SST-2 lengths 41.1 vs 54.5 examples/s, 128: 15.9 vs 21.1)
    parser.add_argument('--amp', choices=sorted(OPTION_NAMES) + [AUTO, OFF], default=OFF,
                        help='mixed precision: bf16 on CPU (dense layers in bfloat16 on '
                        'oneDNN; needs AVX-512), fp16 on GPU; parameters stay float32. '
                        f'auto: bf16 on a CPU with AVX-512 BF16 for a model at least '
                        f'{AUTO_MIN_WIDTH} wide, else float32 (the first line says which); '
                        'off: float32 (default: %(default)s; bf16 ran slower than float32 '
                        'on an AMX Xeon)')


def _run_options(parser, checkpoint_every):
    run = parser.add_argument_group('checkpoints and resuming')
    run.add_argument('--checkpoint-dir', help='where checkpoints and the metrics log go '
                     '(default: OUT.checkpoints, beside --out)')
    run.add_argument('--checkpoint-every', type=non_negative_int, default=checkpoint_every,
                     help='updates between checkpoints; 0: only at the end (and at the end of '
                     'each epoch when fine-tuning) (default: %(default)s)')
    run.add_argument('--resume', action='store_true',
                     help='continue from the newest checkpoint in --checkpoint-dir, to the '
                     'same parameters as an uninterrupted run')


def _finetune_options(parser, d):
    parser.add_argument('--pretrained', required=True,
                        help='a gluonbert folder (vocab.json, pretrained.params, config.json) '
                        'or an HF BERT folder (config.json, model.safetensors, vocab.txt; its '
                        'WordPiece tokenizer is used)')
    parser.add_argument('--task', choices=sorted(TASKS), default='snli',
                        help='classification, regression (scores), token-classification '
                        '(CoNLL), question-answering (SQuAD v1.1 JSON), multiple-choice (Cosmos '
                        'QA or SWAG CSV), or the presets snli and sick, which find their own '
                        'data (default: %(default)s)')
    data = parser.add_argument_group('data')
    data.add_argument('--train', help='labelled file to train on (snli/sick: their own data)')
    data.add_argument('--dev', help='labelled file that picks the best model (default: every '
                      '10th training example, held out)')
    data.add_argument('--test', help='labelled file the best model is scored on at the end')
    data.add_argument('--data-dir', help='snli/sick: folder of their files (default: '
                      'resolved as for WikiText-2)')
    _file_options(parser)
    evaluation = parser.add_argument_group('evaluation and the best model')
    evaluation.add_argument('--eval-every', type=non_negative_int, default=0,
                            help='updates between evaluations on dev (default: 0, after each '
                            'epoch)')
    evaluation.add_argument('--patience', type=positive_int,
                            help='stop after this many evaluations without a better dev score')
    parser.add_argument('--max-len', type=max_len, default=d['max_len'],
                        help='at most the pretrained model\'s max_len (default: %(default)s)')
    qa = parser.add_argument_group('question-answering (saved with the model, so that '
                                   'evaluate, predict and the export window and search alike)')
    qa.add_argument('--doc-stride', type=positive_int,
                    help='tokens from one window\'s start to the next over a long context '
                    '(the step, not the overlap; default: max_len // 3, BERT\'s 128 at 384)')
    qa.add_argument('--max-query-len', type=positive_int,
                    help='tokens of the question kept (default: max_len // 6)')
    qa.add_argument('--max-answer-len', type=positive_int,
                    help='the longest answer the span search considers, in tokens (default: '
                    '30)')
    parser.add_argument('--batch-size', type=positive_int, default=d['batch_size'])
    parser.add_argument('--group-by-length', action='store_true',
                        help="batch training sentences of about one length together within "
                        "groups of 50 shuffled batches (HF's group_by_length), so that short "
                        'ones stop computing on the padding of long ones (default: off)')
    parser.add_argument('--epochs', type=positive_int, default=d['epochs'])
    parser.add_argument('--lr', type=positive_float, default=d['lr'],
                        help=f'default: {SMALL_MODEL_LR} for a model of up to '
                        f'{SMALL_MODEL_WIDTH} hidden units (d2l\'s small BERT), else '
                        f'{LARGE_MODEL_LR} (BERT-base, as HF\'s run_glue); the d2l chapter\'s '
                        f'1e-4 at batch 512 stays at chance on SNLI')
    parser.add_argument('--dropout', type=probability, default=d['dropout'])
    parser.add_argument('--strategy', choices=['plain', 'rdrop', 'fgm'], default='plain',
                        help='R-Drop or FGM embedding noise (default: %(default)s)')
    knobs = parser.add_argument_group('trainer (gluonbert.train.trainer.BERTTrainer)')
    knobs.add_argument('--optimizer', choices=sorted(OPTIMIZERS), default='adamw',
                       help='adamw: decoupled weight decay, bias-corrected; bertadam: as BERT, '
                       'no bias correction; adam: L2 through the gradient (default: '
                       '%(default)s)')
    knobs.add_argument('--weight-decay', type=non_negative_float, default=0.01,
                       help='off for biases and LayerNorm (default: %(default)s)')
    knobs.add_argument('--schedule', default='linear', choices=SCHEDULES,
                       help='learning-rate schedule, HF names (default: %(default)s)')
    knobs.add_argument('--warmup-steps', type=non_negative_int,
                       help='updates of linear warm-up (default: --warmup-ratio of the run)')
    knobs.add_argument('--warmup-ratio', type=probability,
                       help='share of the updates warmed up, when --warmup-steps is not given '
                       f'(default: {d["warmup_ratio"]}; 0 with --schedule constant)')
    knobs.add_argument('--groups', help='JSON of parameter groups by name pattern, e.g. '
                       '\'{"encoder|hidden": {"lr_mult": 0.1}, "^output": {"lr_mult": 1}}\'')
    knobs.add_argument('--layerwise-decay', type=decay,
                       help='lr x decay ** (num_layers + 2 - depth), embeddings at depth 0')
    knobs.add_argument('--freeze', type=pattern,
                       help='pattern of parameter names not to train')
    knobs.add_argument('--clip', type=positive_float, help='maximum global gradient norm')
    knobs.add_argument('--accumulate', type=positive_int, default=1,
                       help='micro-batches per update (default: %(default)s)')
    knobs.add_argument('--stale', choices=POLICIES, default='error',
                       help='what a parameter without a fresh gradient does (default: '
                       '%(default)s)')
    knobs.add_argument('--show-groups', action='store_true',
                       help="print every parameter's effective lr and wd")
    parser.add_argument('--from-scratch', action='store_true',
                        help='re-initialize the BERT randomly (to measure what pretraining '
                        'brings)')
    parser.add_argument('--split-punctuation', action='store_true',
                        help="split punctuation off words when the model has d2l's whitespace "
                        'tokenizer (made for pre-tokenized text such as WikiText); the '
                        'fine-tuned model keeps this tokenizer')
    parser.add_argument('--train-limit', type=non_negative_int, default=0, help='use the '
                        'first N training examples (0: all)')
    parser.add_argument('--test-limit', type=non_negative_int, default=0, help='use the '
                        'first N dev and test examples (0: all)')
    _run_options(parser, checkpoint_every=0)
    _common(parser, d['out'])


def _file_options(parser):
    """How labelled files are read: columns and format (``Task.read``'s options)."""
    files = parser.add_argument_group('reading files (CSV, TSV, JSON Lines; CoNLL for '
                                      'token-classification)')
    files.add_argument('--text-columns', help='column(s) holding the text, comma-separated: '
                       'one, or two for a pair (default: sentence1,sentence2, sentence, '
                       'premise,hypothesis or text, whichever the file has)')
    files.add_argument('--label-column', help='column holding the label or score '
                       '(default: label)')
    files.add_argument('--format', choices=['csv', 'tsv', 'jsonl'],
                       help='default: from the file extension')
    files.add_argument('--quoting', action='store_true',
                       help='TSV: honour double quotes (off by default: GLUE files hold raw '
                       'quotes)')


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
    main.add_argument('--finetune-epochs', type=positive_int, default=MAIN_FINETUNE['epochs'],
                      help='(default: %(default)s)')
    main.add_argument('--finetune-limit', type=non_negative_int,
                      default=MAIN_FINETUNE['train_limit'],
                      help='fine-tune on the first N pairs (default: %(default)s, all of the '
                      'embedded slice and of the shared SNLI dev split; 0: all)')
    pretrain = commands.add_parser(
        'pretrain', help='pretrain BERT on WikiText-2 (MLM + NSP)',
        description="Pretrain BERT on WikiText-2 as d2l's chapter does; writes a d2l-style "
        'folder (vocab.json, pretrained.params) plus config.json and a loss plot. Defaults '
        'are the chapter\'s.')
    _pretrain_options(pretrain, CHAPTER_PRETRAIN)
    _amp_option(pretrain)
    pretrain.add_argument('--fallback', choices=['embedded'],
                          help='use the embedded slice when WikiText-2 is not found')
    _corpus_options(pretrain)
    finetune = commands.add_parser(
        'finetune', help='fine-tune a pretrained BERT on a task and your own files',
        description='Fine-tune a pretrained BERT on a task: evaluate on dev every epoch (or '
        '--eval-every updates), keep the best model by the task\'s main metric in --out with '
        'its tokenizer, stop early with --patience, resume with --resume, and score the best '
        'model on --test. The defaults are a recipe that works from a small BERT pretrained '
        'for minutes (chapters/natural_language_inference_bert.py keeps the book\'s).')
    _finetune_options(finetune, FINETUNE)
    _amp_option(finetune)
    finetune.add_argument('--fallback', choices=['embedded'],
                          help='use the embedded SNLI slice when SNLI is not found')
    evaluate = commands.add_parser(
        'evaluate', help='the task metrics of a fine-tuned folder on a labelled file',
        description='Score a folder written by `gluonbert finetune` on a labelled file '
        '(--test; snli and sick default to their test split), tokenized as in training.')
    evaluate.add_argument('--model', required=True, help='fine-tuned folder')
    evaluate.add_argument('--test', help='labelled file to score (read as in training)')
    _file_options(evaluate)
    evaluate.add_argument('--data-dir', help='snli/sick: where to find their data')
    evaluate.add_argument('--batch-size', type=positive_int, default=256)
    evaluate.add_argument('--test-limit', type=non_negative_int, default=0,
                          help='score the first N examples (0: all)')
    evaluate.add_argument('--devices', default='cpu')
    export = commands.add_parser(
        'export', help='export a fine-tuned folder to ONNX, verified under onnxruntime',
        description='Export a folder written by `gluonbert finetune` to ONNX (dynamic batch '
        'and length; vocab, labels and tokenizer beside it) and check onnxruntime against '
        'MXNet on random and real examples; refused when they differ by more than 1e-4. '
        'Serve the result without MXNet with `python export/predict.py FOLDER input.txt`. '
        'With --to hf, write an HF transformers folder instead (BertForSequenceClassification, '
        'BertForTokenClassification, BertForQuestionAnswering or BertForMultipleChoice, with '
        'vocab.txt and tokenizer.json).')
    export.add_argument('--model', required=True, help='fine-tuned folder')
    export.add_argument('--to', choices=EXPORT_OUT, default='onnx',
                        help='onnx (default), or hf: an HF transformers task folder')
    export.add_argument('--data', help='a labelled file whose first 64 examples are checked '
                        'besides random ones (snli/sick: their test split)')
    _file_options(export)
    export.add_argument('--data-dir', help='snli/sick: where to find their data')
    export.add_argument('--int8', action='store_true',
                        help='also write a dynamic-int8 quantized model.int8.onnx')
    export.add_argument('--out', help='folder to write (default: runs/onnx, or runs/hf with '
                        '--to hf)')
    predict = commands.add_parser(
        'predict', help='predictions of a fine-tuned folder for lines of text',
        description='Read lines (a text, or text<TAB>text; a sentence of words for '
        'token-classification; question<TAB>context for question-answering; '
        'context<TAB>question<TAB>ending0<TAB>ending1... for multiple-choice) and print '
        'predictions as export/predict.py does, tokenized as in training.')
    predict.add_argument('--model', required=True, help='fine-tuned folder')
    predict.add_argument('input', nargs='?', default='-',
                         help='file of input lines (default: stdin)')
    predict.add_argument('--batch-size', type=positive_int, default=64)
    split = commands.add_parser(
        'split', help='split one labelled file into train/dev/test, each passage on one side',
        description='Split a SQuAD v1.1 JSON file by article title, or a CSV/TSV/JSON Lines '
        'file by the values of one column (--by), into OUT/train, dev and test files, so '
        'that no passage is both trained and tested. Same file, fractions and seed: same '
        'split. OUT must be new.')
    split.add_argument('file', help='SQuAD v1.1 .json, or .csv/.tsv/.jsonl')
    split.add_argument('--out', required=True, help='new folder for the split files')
    split.add_argument('--by', default='context',
                       help='tables: rows with equal values of this column stay together '
                       '(default: %(default)s, as Cosmos QA)')
    split.add_argument('--dev-fraction', type=probability, default=0.1,
                       help='share of the examples in dev (default: %(default)s)')
    split.add_argument('--test-fraction', type=probability, default=0.1,
                       help='share of the examples in test (default: %(default)s)')
    split.add_argument('--seed', type=seed, default=0)
    for sub in commands.choices.values():
        _config_options(sub)
    parser.subcommands = commands.choices
    return parser


_NOT_CONFIG = ('command', 'config', 'save_config')


def read_config(path, subparser):
    """Option values from a JSON or TOML file, checked against ``subparser``'s options with
    the same checkers (``option_types``) as the command line."""
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
    actions = {a.dest: a for a in subparser._actions if a.dest not in _NOT_CONFIG + ('help',)}
    for key, value in values.items():
        action = actions.get(key)
        if action is None:
            raise ValueError(f'config file {path}: unknown option {key!r}; expected one of '
                             f'{", ".join(sorted(actions))}')
        if value is None and action.default is None:  # an unset option, as --save-config writes
            continue
        if isinstance(action, argparse._AppendAction):  # a repeatable option: a list
            if not isinstance(value, list):
                raise ValueError(f'config file {path}: option {key!r} is {value!r}; expected '
                                 f'a list')
            values[key] = [_config_value(path, key, v, action) for v in value]
            continue
        values[key] = _config_value(path, key, value, action)
    return values


def _config_value(path, key, value, action):
    """``value`` of option ``key`` from config file ``path``, checked as on the command line."""
    where = f'config file {path}: option {key!r} is {value!r}; expected'
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise ValueError(f'{where} true or false')
        return value
    if isinstance(action.type, OptionType):
        if isinstance(value, str) and action.type.kind is not str:
            raise ValueError(f'{where} {action.type.expected} (a number, not a string)')
        try:
            value = action.type(value)
        except argparse.ArgumentTypeError:
            raise ValueError(f'{where} {action.type.expected}') from None
    elif not isinstance(value, str):
        raise ValueError(f'{where} a string')
    if action.choices and value not in action.choices:
        raise ValueError(f'{where} one of {list(action.choices)}')
    return value


def parse_args(argv=None):
    """Parse ``argv``, with a ``--config`` file's values as defaults (required options
    included); check that the job fits in memory; save ``--save-config``."""
    parser = build_parser()
    subparsers = parser.subcommands.values()
    required = {sub: [a for a in sub._actions if a.required] for sub in subparsers}
    for actions in required.values():  # a config file may give them: checked below
        for action in actions:
            action.required = False
    args = parser.parse_args(argv)
    subparser = parser.subcommands[args.command]
    if args.config:
        subparser.set_defaults(**read_config(args.config, subparser))
        args = parser.parse_args(argv)
    missing = [a.option_strings[0] for a in required[subparser]
               if getattr(args, a.dest) is None]
    if missing:
        subparser.error(f'the following arguments are required: {", ".join(missing)} (on the '
                        f'command line or in --config)')
    if args.command == 'export' and args.out is None:
        args.out = EXPORT_OUT[args.to]
    check_schedule(args)
    if args.command in ('main', 'pretrain'):
        check_memory(args.batch_size, args.max_len, args.num_hiddens, args.ffn_num_hiddens,
                     args.num_heads, args.num_blks)
    if args.save_config:
        write_json(args.save_config,
                   {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG})
    return args


def check_schedule(opts):
    """The warm-up options fit each other and the schedule, refused before any work: a
    constant schedule has no warm-up, and --warmup-steps and --warmup-ratio both set one."""
    if not hasattr(opts, 'schedule'):
        return
    steps, ratio = opts.warmup_steps, getattr(opts, 'warmup_ratio', None)
    if steps is not None and ratio is not None:
        raise ValueError(f'--warmup-steps {steps} and --warmup-ratio {ratio} both set the '
                         f'warm-up; give one (updates, or a share of the updates)')
    if opts.schedule == 'constant':
        for option, value in (('--warmup-steps', steps), ('--warmup-ratio', ratio)):
            if value:
                raise ValueError(f'--schedule constant has no warm-up, and {option} {value} '
                                 f'asks for one; use --schedule constant_with_warmup, or leave '
                                 f'out {option}')


def finetune_options(pretrained, **overrides):
    """The ``finetune`` subcommand's options for ``pretrained``, with ``overrides``: for
    scripts that run ``jobs.finetune`` without a command line."""
    opts = build_parser().subcommands['finetune'].parse_args(['--pretrained', pretrained])
    for key, value in overrides.items():
        if not hasattr(opts, key):
            raise ValueError(f'finetune has no option {key!r}')
        setattr(opts, key, value)
    check_schedule(opts)
    return opts


def run_main(opts):
    """The README's main job: pretrain, fine-tune the result on NLI, export it to ONNX."""
    from . import jobs
    from .data.nli import locate_snli
    print('== stage 1/3: pretrain a small BERT on WikiText-2')
    jobs.pretrain(opts, fallback='embedded')
    print('== stage 2/3: fine-tune it on SNLI (the d2l NLI chapter)')
    _, finetuned, onnx_folder = _main_folders(opts.out)
    snli, _ = locate_snli(fallback='embedded')  # once: the export checks the same files
    finetune_opts = finetune_options(
        opts.out, **dict(MAIN_FINETUNE, max_len=opts.max_len, train_limit=opts.finetune_limit,
                         epochs=opts.finetune_epochs, devices=opts.devices, seed=opts.seed,
                         data_dir=snli, out=finetuned))
    jobs.finetune(finetune_opts)
    print('== stage 3/3: export the classifier to ONNX and check it under onnxruntime')
    jobs.export(argparse.Namespace(model=finetune_opts.out, data=None, data_dir=snli,
                                   int8=False, out=onnx_folder))
    print(f'serve it without MXNet: python export/predict.py {onnx_folder} pairs.tsv')


def _main_folders(out):
    """The main job's three folders: ``out`` and its siblings ``finetuned`` and ``onnx``."""
    parent = os.path.dirname(out.rstrip('/'))
    return out, os.path.join(parent, 'finetuned'), os.path.join(parent, 'onnx')


def check_outputs(args):
    """Refuse, before any work, an output folder the job could not replace at its end."""
    from .export.folder import check_export_folder
    from .tasks.saved import check_replaceable as check_task_folder
    from .pretrained.saved import check_pretrained_folder
    if args.command == 'main':
        pretrained, finetuned, onnx = _main_folders(args.out)
        check_pretrained_folder(pretrained)
        check_task_folder(finetuned)
        check_export_folder(onnx)
    elif args.command == 'pretrain':
        check_pretrained_folder(args.out)
    elif args.command == 'finetune':
        check_task_folder(args.out)
    elif args.command == 'export' and args.to == 'hf':
        _check_hf_export(args)
    elif args.command == 'export':
        check_export_folder(args.out)
    if getattr(args, 'resume', False):
        _check_resumable(args)


def _check_hf_export(args):
    """``export --to hf``: no ONNX-only option, and an ``--out`` it may replace."""
    from .pretrained.hf import check_hf_folder
    for name in ONNX_ONLY:
        if getattr(args, name):
            option = '--' + name.replace('_', '-')
            raise ValueError(f'{option} applies to --to onnx (the ONNX model and its check '
                             f'under onnxruntime); --to hf writes the model\'s weights as they '
                             f'are: leave {option} out')
    check_hf_folder(args.out)


def _check_resumable(args):
    """``--resume`` with no checkpoint to resume from fails before any work."""
    from .jobs import checkpoint_dir
    from .train.state import CheckpointError, CheckpointManager
    checkpoints = CheckpointManager(checkpoint_dir(args))
    if not checkpoints.checkpoints():
        raise CheckpointError(checkpoints.why_empty())


def main(argv=None):
    try:
        args = parse_args(argv)
        from . import preflight  # all that needs no data, --out included (check_outputs)
        preflight.check(args)
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
            jobs.predict_lines(args)
        elif args.command == 'split':
            jobs.split(args)
    except USER_ERRORS as error:
        print(f'gluonbert {args.command}: error: {error}', file=sys.stderr)
        return 2
    return 0
