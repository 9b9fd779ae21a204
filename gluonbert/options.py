"""Every job's options as one typed dataclass: what ``jobs`` reads, whoever built it.

A field is an option: ``max_len`` is ``--max-len``, with its default, its checker
(``option_types``), its choices and its help. The command line (``cli``) builds each
subcommand's parser from these fields, a ``--config`` file is checked against them, and a
script builds them directly, e.g. ``jobs.finetune(FinetuneOptions(pretrained='runs/p',
task='classification', train='train.tsv'))``; every value is checked on construction, so a bad
one is a ValueError naming the option, the value and what was expected, from any of the three.

The trainer's options that pretraining and fine-tuning share are declared once
(``TRAINER_OPTIONS``); each job gives its own defaults where it lists them
(``trainer_option``), and resolves them for ``BERTTrainer`` the same way (``learning_rate``,
``lr_schedule``, ``warmup``).
"""
import dataclasses
import os
from typing import ClassVar

from .data.masking import MASKING_STRATEGIES, MaskingConfig
from .data.packing import SHORT_SEQ_PROB
from .data.preprocess import PreprocessSettings
from .distributed.kvstore import KVSTORE_TYPES
from .model.transformer import ACTIVATIONS
from . import option_types as types
from .optimizer import OPTIMIZERS
from .tasks import TASKS
from .train.mixed_precision import AUTO, AUTO_MIN_WIDTH, OFF, OPTION_NAMES
from .train.recipes import (FINETUNE_RECIPE, LARGE_MODEL_EPOCHS, LARGE_MODEL_LR,
                            SMALL_MODEL_EPOCHS, SMALL_MODEL_LR, SMALL_MODEL_WIDTH,
                            finetune_epochs, finetune_lr, warmup_updates)
from .train.schedules import SCHEDULES, default_schedule
from .train.stale import POLICIES

CHAPTER_PRETRAIN = dict(num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_blks=2,
                        dropout=0.2, max_len=64, batch_size=512, steps=50,
                        out='runs/pretrained')
# The command line's fine-tuning recipe (train/recipes.py; the chapter scripts keep the book's)
FINETUNE = dict(FINETUNE_RECIPE, out='runs/finetuned')
# The main job: the chapter's model on smaller batches, so that it finishes in minutes on 2 cores;
# fine-tuned for the recipe's 8 epochs at lr 1e-3 (one epoch of the embedded slice's 2,700 pairs,
# 43 updates, left it at the majority class), on at most 10,000 pairs (d2l's SNLI has 550,000)
MAIN_PRETRAIN = dict(CHAPTER_PRETRAIN, batch_size=128, steps=200, out='runs/main/pretrained')
MAIN_FINETUNE = dict(FINETUNE, lr=1e-3, epochs=SMALL_MODEL_EPOCHS, max_len=64, train_limit=10_000, test_limit=10_000,
                     out='runs/main/finetuned')
# export's formats and the folder each writes by default
EXPORT_OUT = {'onnx': 'runs/onnx', 'hf': 'runs/hf'}

# The groups of options in a command's --help, in this order (options of no group come first)
MODEL = "model (the arguments of d2l's BERTModel)"
DATA = 'data'
FILES = 'reading files (CSV, TSV, JSON Lines; CoNLL for token-classification)'
EVALUATION = 'evaluation and the best model'
QA = ('question-answering (saved with the model, so that evaluate, predict and the export '
      'window and search alike)')
TRAINING = 'training'
TRAINER = 'trainer (gluonbert.train.trainer.BERTTrainer)'
CHECKPOINTS = 'checkpoints and resuming'
WORKERS = 'several workers (python -m gluonbert.distributed.launch ... -- gluonbert pretrain ...)'
CORPUS = 'own corpus and continued pretraining (instead of WikiText-2)'
GROUPS = (MODEL, DATA, FILES, EVALUATION, QA, TRAINING, TRAINER, CHECKPOINTS, WORKERS, CORPUS)


def option(default=dataclasses.MISSING, help=None, *, group=None, type=None, choices=None,
           metavar=None, append=False, positional=False):
    """A dataclass field that is an option: no ``default`` makes it required; a default of
    False makes it a switch; ``type`` is an ``option_types`` checker; ``append``: a repeatable
    option whose value is a list; ``positional``: an argument without ``--``."""
    return dataclasses.field(default=default, metadata=dict(
        help=help, group=group, type=type, choices=choices, metavar=metavar, append=append,
        positional=positional))


def _redefault(cls, name, default):
    """Option ``name`` as declared in ``cls``, with another job's ``default``."""
    return option(default, **cls.__dataclass_fields__[name].metadata)


# The trainer's options that pretrain and finetune share: their checkers and choices, declared
# once; each job lists them with its defaults (and its own help where the defaults need words)
TRAINER_OPTIONS = dict(
    optimizer=dict(help='adamw: decoupled weight decay, bias-corrected; bertadam: as BERT, no '
                   'bias correction; adam: L2 through the gradient (default: %(default)s)'),
    lr=dict(type=types.positive_float),
    weight_decay=dict(type=types.non_negative_float,
                      help='off for biases and LayerNorm (default: %(default)s)'),
    schedule=dict(choices=SCHEDULES,
                  help='learning-rate schedule, HF names (default: %(default)s)'),
    warmup_steps=dict(type=types.non_negative_int),
    clip=dict(type=types.positive_float, help='maximum global gradient norm'),
)


def trainer_option(name, default, **job):
    """The shared trainer option ``name`` (``TRAINER_OPTIONS``) with a job's ``default``, and
    the ``help`` or ``choices`` where that job's differ."""
    return option(default, group=TRAINER, **{**TRAINER_OPTIONS[name], **job})


def check_value(name, value, field):
    """``value`` of option ``name`` (a dataclass ``field``) as the command line takes it;
    ValueError "option 'name' is value; expected ..." otherwise. Paths may be ``os.PathLike``."""
    if field.metadata['append']:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f'option {name!r} is {value!r}; expected a list')
        return [_checked(name, v, field) for v in value]
    return _checked(name, value, field)


def _checked(name, value, field):
    """One value of option ``name``, as ``check_value``."""
    meta = field.metadata
    where = f'option {name!r} is {value!r}; expected'
    if field.default is False:
        if not isinstance(value, bool):
            raise ValueError(f'{where} true or false')
        return value
    checker = meta['type']
    if isinstance(checker, types.OptionType):
        if isinstance(value, str) and checker.kind is not str:
            raise ValueError(f'{where} {checker.expected} (a number, not a string)')
        converted = checker.convert(value)
        if converted is None or not checker.check(converted):
            raise ValueError(f'{where} {checker.expected}')
        value = converted
    elif isinstance(value, os.PathLike):
        value = os.fspath(value)
    elif not isinstance(value, str):
        raise ValueError(f'{where} a string')
    if meta['choices'] and value not in meta['choices']:
        raise ValueError(f'{where} one of {list(meta["choices"])}')
    return value


@dataclasses.dataclass(kw_only=True)
class Options:
    """A command's options (``command``): checked on construction (``check_value``; None
    stands for an option not given, where that is its default)."""
    command: ClassVar[str]

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.default is None:
                continue
            setattr(self, field.name, check_value(field.name, value, field))

    def as_dict(self):
        """The options by name, as a ``--config`` file holds them."""
        return dataclasses.asdict(self)


def checkpoint_dir(opts):
    """``--checkpoint-dir``, else ``OUT.checkpoints`` beside the output folder (never inside
    it: the output folder is replaced whole when saved)."""
    return opts.checkpoint_dir or opts.out.rstrip('/') + '.checkpoints'


def check_warmup(schedule, warmup_steps, warmup_ratio=None):
    """The warm-up options fit each other and the schedule, refused before any work: a
    constant schedule has no warm-up, and --warmup-steps and --warmup-ratio both set one."""
    if warmup_steps is not None and warmup_ratio is not None:
        raise ValueError(f'--warmup-steps {warmup_steps} and --warmup-ratio {warmup_ratio} '
                         f'both set the warm-up; give one (updates, or a share of the updates)')
    if schedule == 'constant':
        for flag, value in (('--warmup-steps', warmup_steps), ('--warmup-ratio', warmup_ratio)):
            if value:
                raise ValueError(f'--schedule constant has no warm-up, and {flag} {value} '
                                 f'asks for one; use --schedule constant_with_warmup, or leave '
                                 f'out {flag}')


@dataclasses.dataclass(kw_only=True)
class _Pretraining(Options):
    """The options of a pretraining run on WikiText-2 or synthetic batches (``main`` and
    ``pretrain``), with the d2l chapter's defaults."""
    num_hiddens: int = option(CHAPTER_PRETRAIN['num_hiddens'], group=MODEL, type=types.positive_int)
    ffn_num_hiddens: int = option(CHAPTER_PRETRAIN['ffn_num_hiddens'], group=MODEL,
                                  type=types.positive_int)
    num_heads: int = option(CHAPTER_PRETRAIN['num_heads'], group=MODEL, type=types.positive_int)
    num_blks: int = option(CHAPTER_PRETRAIN['num_blks'], group=MODEL, type=types.positive_int)
    dropout: float = option(CHAPTER_PRETRAIN['dropout'], group=MODEL, type=types.probability)
    activation: str = option('relu', 'relu as d2l, gelu as BERT (default: %(default)s)',
                             group=MODEL, choices=ACTIVATIONS)
    data_dir: str = option(None, "folder holding wiki.train.tokens (default: $GLUONBERT_DATA, "
                           "../shared/data, d2l's ../data, then d2l's download)", group=DATA)
    max_len: int = option(CHAPTER_PRETRAIN['max_len'], 'pad (or cut) the sentence pairs to this '
                          "length; the model keeps d2l's table of 1000 positions (default: "
                          '%(default)s)', group=DATA, type=types.max_len)
    batch_size: int = option(CHAPTER_PRETRAIN['batch_size'], group=DATA, type=types.positive_int)
    masking: str = option('token', "MLM masking: d2l's per token, whole words, or spans",
                          group=DATA, choices=MASKING_STRATEGIES)
    mask_rate: float = option(MaskingConfig().rate, 'share of the tokens predicted (default: '
                              '%(default)s)', group=DATA, type=types.decay)
    synthetic: bool = option(False, 'random batches of the same layout instead of WikiText-2 '
                             '(for benchmarks and tests of the training path; saves no model)',
                             group=DATA)
    vocab_size: int = option(20256, "--synthetic: the vocabulary size (default: %(default)s, "
                             "WikiText-2's)", group=DATA, type=types.positive_int)
    steps: int = option(CHAPTER_PRETRAIN['steps'], group=TRAINING, type=types.positive_int)
    log_every: int = option(10, 'steps between logged losses (default: %(default)s)',
                            group=TRAINING, type=types.positive_int)
    optimizer: str = trainer_option('optimizer', 'adam', help="adam (the chapter's), adamw, "
                                    'bertadam, or an MXNet optimizer such as sgd (default: '
                                    '%(default)s)')
    lr: float = trainer_option('lr', 1e-3, help="the learning rate (default: %(default)s; "
                               "d2l's 0.01 collapses the <cls> encoding of this small model "
                               'within 150 steps, leaving nothing for fine-tuning)')
    weight_decay: float = trainer_option('weight_decay', 0.0, help='off for biases and '
                                         'LayerNorm (default: %(default)s, as the chapter)')
    schedule: str = trainer_option('schedule', None, help='learning-rate schedule, HF names '
                                   '(default: constant; constant_with_warmup with '
                                   '--warmup-steps)')
    warmup_steps: int = trainer_option('warmup_steps', 0)
    min_lr: float = option(0.0, 'the floor of a linear or cosine decay (default: %(default)s)',
                           group=TRAINER, type=types.non_negative_float)
    clip: float = trainer_option('clip', None)
    spike_factor: float = option(None, 'skip an update whose loss is above this many times '
                                 'the running median of recent losses (off by default; e.g. 3)',
                                 group=TRAINER, type=types.positive_float)
    spike_window: int = option(100, 'losses in the running median (default: %(default)s)',
                               group=TRAINER, type=types.positive_int)
    spike_patience: int = option(3, 'spikes in a row that roll back to the last checkpoint '
                                 'and skip the batches read since (default: %(default)s)',
                                 group=TRAINER, type=types.positive_int)
    checkpoint_dir: str = option(None, 'where checkpoints and the metrics log go (default: '
                                 'OUT.checkpoints, beside --out)', group=CHECKPOINTS)
    checkpoint_every: int = option(100, 'updates between checkpoints; 0: only at the end (and '
                                   'at the end of each epoch when fine-tuning) (default: '
                                   '%(default)s)', group=CHECKPOINTS, type=types.non_negative_int)
    resume: bool = option(False, 'continue from the newest checkpoint in --checkpoint-dir, to '
                          'the same parameters as an uninterrupted run', group=CHECKPOINTS)
    kvstore: str = option(None, 'default: dist_sync under the launcher, else device '
                          '(dist_async updates on the servers, where BERTTrainer cannot check '
                          'the step)', group=WORKERS,
                          choices=[k for k in KVSTORE_TYPES if k != 'dist_async'])
    timeout: float = option(300.0, 'seconds without a completed step (or to join the job) '
                            'before a worker exits with status 124 (default: %(default)s)',
                            group=WORKERS, type=types.positive_float)
    summary: str = option(None, 'write a JSON summary (step times, throughput) here',
                          group=WORKERS, metavar='FILE')
    devices: str = option('cpu', 'cpu, gpu (all GPUs), or a list such as cpu:0,cpu:1 or '
                          'gpu:0,gpu:1 (default: %(default)s)')
    seed: int = option(0, 'fixes data order, masking and initialisation (default: '
                       '%(default)s)', type=types.seed)
    out: str = option(CHAPTER_PRETRAIN['out'], 'folder to write (default: %(default)s)')

    def __post_init__(self):
        super().__post_init__()
        check_warmup(self.schedule, self.warmup_steps)

    def learning_rate(self, num_hiddens):
        """The trainer's learning rate: ``--lr``."""
        return self.lr

    def lr_schedule(self):
        """``--schedule``, else constant (with warm-up when ``--warmup-steps`` asks for it)."""
        return self.schedule or default_schedule(self.warmup_steps)

    def warmup(self, num_updates):
        """Updates of warm-up: ``--warmup-steps``."""
        return self.warmup_steps


@dataclasses.dataclass(kw_only=True)
class MainOptions(_Pretraining):
    """``gluonbert main``: the pretraining options (on smaller batches, for longer) and how
    long the fine-tuning stage runs."""
    command: ClassVar[str] = 'main'
    batch_size: int = _redefault(_Pretraining, 'batch_size', MAIN_PRETRAIN['batch_size'])
    steps: int = _redefault(_Pretraining, 'steps', MAIN_PRETRAIN['steps'])
    out: str = _redefault(_Pretraining, 'out', MAIN_PRETRAIN['out'])
    finetune_epochs: int = option(MAIN_FINETUNE['epochs'], '(default: %(default)s)',
                                  type=types.positive_int)
    finetune_limit: int = option(MAIN_FINETUNE['train_limit'], 'fine-tune on the first N pairs '
                                 '(default: %(default)s, all of the embedded slice and of the '
                                 'shared SNLI dev split; 0: all)', type=types.non_negative_int)

    def folders(self):
        """The main job's three folders: ``out`` (pretrained) and its siblings ``finetuned``
        and ``onnx``."""
        parent = os.path.dirname(self.out.rstrip('/'))
        return self.out, os.path.join(parent, 'finetuned'), os.path.join(parent, 'onnx')

    def pretrain_options(self):
        """The ``PretrainOptions`` of the main job's first stage."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(_Pretraining)}
        options = PretrainOptions(**shared, fallback='embedded')
        options.amp = None  # main has no --amp: its precision line names no option
        return options


def _amp_option():
    # auto by default: with AMX on (runtime.py), bench/real_finetune.py measured MiniLM's bf16
    # fine-tuning at 1.18x float32 (SST-2 lengths) to 1.67x (128) on an AMX Xeon, and
    # bench/real_checkpoint.py the same SST-2 accuracy (0.799 over 3 seeds, both)
    return option(AUTO, 'mixed precision: bf16 on CPU (dense layers in bfloat16 on oneDNN; '
                  'needs AVX-512), fp16 on GPU; parameters stay float32. auto: bf16 on a CPU '
                  f'with AVX-512 BF16 (and AMX on, where it has AMX) for a model at least '
                  f'{AUTO_MIN_WIDTH} wide, else float32 (the first line says which); off: '
                  'float32 (default: %(default)s)',
                  choices=sorted(OPTION_NAMES) + [AUTO, OFF])


@dataclasses.dataclass(kw_only=True)
class PretrainOptions(_Pretraining):
    """``gluonbert pretrain``: a pretraining run, on WikiText-2 or an own corpus (continuing a
    pretrained folder with ``pretrained``)."""
    command: ClassVar[str] = 'pretrain'
    amp: str = _amp_option()
    fallback: str = option(None, 'use the embedded slice when WikiText-2 is not found',
                           choices=['embedded'])
    corpus: list = option(None, 'a text file or folder: one document per blank-line-separated '
                          'block (or per line: --doc-per-line); repeat to mix corpora, each '
                          'document used WEIGHT times in expectation (default 1)',
                          group=CORPUS, metavar='PATH[:WEIGHT]', append=True)
    doc_per_line: bool = option(False, 'every line of the corpora is a document (as in '
                                'WikiText)', group=CORPUS)
    vocab: str = option(None, "a BERT vocab.txt (default: d2l's word vocabulary of the corpus)",
                        group=CORPUS, metavar='VOCAB_TXT')
    learn_vocab: int = option(None, 'learn a WordPiece vocabulary of about SIZE tokens from '
                              "the corpus (HF's tokenizers)", group=CORPUS, type=types.positive_int,
                              metavar='SIZE')
    pretrained: str = option(None, 'continue pretraining a gluonbert or HF folder (its '
                             'vocabulary, tokenizer, architecture and heads are kept)',
                             group=CORPUS, metavar='FOLDER')
    add_tokens: str = option(None, 'with --pretrained: append these tokens (one per line) to '
                             'the vocabulary, growing the embedding and the MLM decoder',
                             group=CORPUS, metavar='FILE')
    save_hf: str = option(None, 'also save the result as an HF folder (an HF-shaped model: '
                          'GELU, embedding LayerNorm; e.g. one continued from an HF folder)',
                          group=CORPUS, metavar='FOLDER')
    valid_fraction: float = option(0.05, 'share of the documents held out for validation, '
                                   'masked once with a fixed seed (default: %(default)s)',
                                   group=CORPUS, type=types.probability)
    eval_every: int = option(0, 'updates between validations (MLM loss, perplexity, MLM and '
                             'NSP accuracy); 0: after the last update (default: %(default)s)',
                             group=CORPUS, type=types.non_negative_int)
    short_seq_prob: float = option(SHORT_SEQ_PROB, "share of examples packed to a shorter "
                                   "random length, as BERT's (default: %(default)s)",
                                   group=CORPUS, type=types.probability)
    shard_size: int = option(PreprocessSettings.shard_size, 'examples per preprocessed shard; '
                             'each worker of a distributed run reads its own shards, so have '
                             'several per worker (default: %(default)s)', group=CORPUS,
                             type=types.positive_int)


@dataclasses.dataclass(kw_only=True)
class _Reading(Options):
    """How labelled files are read: columns and format (``Task.read``'s options)."""
    text_columns: str = option(None, 'column(s) holding the text, comma-separated: one, or two '
                               'for a pair (default: sentence1,sentence2, sentence, '
                               'premise,hypothesis or text, whichever the file has)', group=FILES)
    label_column: str = option(None, 'column holding the label or score (default: label)',
                               group=FILES)
    format: str = option(None, 'default: from the file extension', group=FILES,
                         choices=['csv', 'tsv', 'jsonl'])
    quoting: bool = option(False, 'TSV: honour double quotes (off by default: GLUE files hold '
                           'raw quotes)', group=FILES)

    def read_options(self):
        """The file-reading options given, as ``Task.read`` keywords."""
        columns = {}
        if self.text_columns:
            columns['text_columns'] = [c.strip() for c in self.text_columns.split(',')]
        if self.label_column:
            columns['label_column'] = self.label_column
        if self.format:
            columns['fmt'] = self.format
        if self.quoting:
            columns['quoting'] = True
        return columns


@dataclasses.dataclass(kw_only=True)
class FinetuneOptions(_Reading):
    """``gluonbert finetune``: fine-tuning a pretrained folder on a task, with the command
    line's recipe as defaults (``train.recipes``)."""
    command: ClassVar[str] = 'finetune'
    pretrained: str = option(help='a gluonbert folder (vocab.json, pretrained.params, '
                             'config.json) or an HF BERT folder (config.json, '
                             'model.safetensors, vocab.txt; its WordPiece tokenizer is used)')
    task: str = option('snli', 'classification, regression (scores), token-classification '
                       '(CoNLL), question-answering (SQuAD v1.1 JSON), multiple-choice (Cosmos '
                       'QA or SWAG CSV), or the presets snli and sick, which find their own '
                       'data (default: %(default)s)', choices=sorted(TASKS))
    train: str = option(None, 'labelled file to train on (snli/sick: their own data)',
                        group=DATA)
    dev: str = option(None, 'labelled file that picks the best model (default: every 10th '
                      'training example, held out)', group=DATA)
    test: str = option(None, 'labelled file the best model is scored on at the end',
                       group=DATA)
    data_dir: str = option(None, 'snli/sick: folder of their files (default: resolved as for '
                           'WikiText-2)', group=DATA)
    eval_every: int = option(0, 'updates between evaluations on dev (default: 0, after each '
                             'epoch)', group=EVALUATION, type=types.non_negative_int)
    patience: int = option(None, 'stop after this many evaluations without a better dev score',
                           group=EVALUATION, type=types.positive_int)
    max_len: int = option(FINETUNE['max_len'], "at most the pretrained model's max_len "
                          '(default: %(default)s)', type=types.max_len)
    doc_stride: int = option(None, "tokens from one window's start to the next over a long "
                             "context (the step, not the overlap; default: max_len // 3, "
                             "BERT's 128 at 384)", group=QA, type=types.positive_int)
    max_query_len: int = option(None, 'tokens of the question kept (default: max_len // 6)',
                                group=QA, type=types.positive_int)
    max_answer_len: int = option(None, 'the longest answer the span search considers, in '
                                 'tokens (default: 30)', group=QA, type=types.positive_int)
    batch_size: int = option(FINETUNE['batch_size'], type=types.positive_int)
    group_by_length: bool = option(False, 'batch training sentences of about one length '
                                   "together within groups of 50 shuffled batches (HF's "
                                   'group_by_length), so that short ones stop computing on the '
                                   'padding of long ones (default: off)')
    epochs: int = option(FINETUNE['epochs'], f'default: {SMALL_MODEL_EPOCHS} for a model of up '
                         f'to {SMALL_MODEL_WIDTH} hidden units, else {LARGE_MODEL_EPOCHS} (a '
                         "published checkpoint, as HF's run_glue)", type=types.positive_int)
    dropout: float = option(FINETUNE['dropout'], type=types.probability)
    strategy: str = option('plain', 'R-Drop or FGM embedding noise (default: %(default)s)',
                           choices=['plain', 'rdrop', 'fgm'])
    optimizer: str = trainer_option('optimizer', 'adamw', choices=sorted(OPTIMIZERS))
    lr: float = trainer_option('lr', FINETUNE['lr'], help=f'default: {SMALL_MODEL_LR} for a '
                               f'model of up to {SMALL_MODEL_WIDTH} hidden units (d2l\'s small '
                               f'BERT), else {LARGE_MODEL_LR} (BERT-base, as HF\'s run_glue); '
                               f'the d2l chapter\'s 1e-4 at batch 512 stays at chance on SNLI')
    weight_decay: float = trainer_option('weight_decay', 0.01)
    schedule: str = trainer_option('schedule', 'linear')
    warmup_steps: int = trainer_option('warmup_steps', None, help='updates of linear warm-up '
                                       '(default: --warmup-ratio of the run)')
    warmup_ratio: float = option(None, 'share of the updates warmed up, when --warmup-steps is '
                                 f'not given (default: {FINETUNE["warmup_ratio"]}; 0 with '
                                 '--schedule constant)', group=TRAINER, type=types.probability)
    groups: str = option(None, 'JSON of parameter groups by name pattern, e.g. '
                         '\'{"encoder|hidden": {"lr_mult": 0.1}, "^output": {"lr_mult": 1}}\'',
                         group=TRAINER)
    layerwise_decay: float = option(None, 'lr x decay ** (num_layers + 2 - depth), embeddings '
                                    'at depth 0', group=TRAINER, type=types.decay)
    freeze: str = option(None, 'pattern of parameter names not to train', group=TRAINER,
                         type=types.pattern)
    clip: float = trainer_option('clip', None)
    accumulate: int = option(1, 'micro-batches per update (default: %(default)s)',
                             group=TRAINER, type=types.positive_int)
    stale: str = option('error', 'what a parameter without a fresh gradient does (default: '
                        '%(default)s)', group=TRAINER, choices=POLICIES)
    show_groups: bool = option(False, "print every parameter's effective lr and wd",
                               group=TRAINER)
    from_scratch: bool = option(False, 're-initialize the BERT randomly (to measure what '
                                'pretraining brings)')
    split_punctuation: bool = option(False, "split punctuation off words when the model has "
                                     "d2l's whitespace tokenizer (made for pre-tokenized text "
                                     'such as WikiText); the fine-tuned model keeps this '
                                     'tokenizer')
    train_limit: int = option(0, 'use the first N training examples (0: all)',
                              type=types.non_negative_int)
    test_limit: int = option(0, 'use the first N dev and test examples (0: all)',
                             type=types.non_negative_int)
    checkpoint_dir: str = _redefault(_Pretraining, 'checkpoint_dir', None)
    checkpoint_every: int = _redefault(_Pretraining, 'checkpoint_every', 0)
    resume: bool = _redefault(_Pretraining, 'resume', False)
    devices: str = _redefault(_Pretraining, 'devices', 'cpu')
    seed: int = _redefault(_Pretraining, 'seed', 0)
    out: str = _redefault(_Pretraining, 'out', FINETUNE['out'])
    amp: str = _amp_option()
    fallback: str = option(None, 'use the embedded SNLI slice when SNLI is not found',
                           choices=['embedded'])

    def __post_init__(self):
        super().__post_init__()
        check_warmup(self.schedule, self.warmup_steps, self.warmup_ratio)

    def for_model(self, num_hiddens):
        """These options with the recipe's ``--epochs`` for a BERT ``num_hiddens`` wide where
        it is not set (``num_hiddens`` None: the width is unknown, the small model's)."""
        if self.epochs is not None:
            return self
        return dataclasses.replace(self, epochs=finetune_epochs(num_hiddens))

    def updates(self, batches_per_epoch):
        """The run's updates: ``--epochs`` of ``batches_per_epoch``, ``--accumulate`` each."""
        return self.epochs * -(-batches_per_epoch // self.accumulate)

    def learning_rate(self, num_hiddens):
        """``--lr``, else the recipe's for a BERT of ``num_hiddens`` hidden units."""
        return self.lr if self.lr is not None else finetune_lr(num_hiddens)

    def lr_schedule(self):
        """``--schedule``."""
        return self.schedule

    def warmup(self, num_updates):
        """Updates of warm-up: ``--warmup-steps``, else ``--warmup-ratio`` (or the recipe's)
        of ``num_updates``."""
        return warmup_updates(self.warmup_steps, self.warmup_ratio, num_updates, self.schedule)


@dataclasses.dataclass(kw_only=True)
class EvaluateOptions(_Reading):
    """``gluonbert evaluate``: the task metrics of a fine-tuned folder on a labelled file."""
    command: ClassVar[str] = 'evaluate'
    model: str = option(help='fine-tuned folder')
    test: str = option(None, 'labelled file to score (read as in training)')
    data_dir: str = option(None, 'snli/sick: where to find their data')
    batch_size: int = option(256, type=types.positive_int)
    test_limit: int = option(0, 'score the first N examples (0: all)', type=types.non_negative_int)
    devices: str = option('cpu')
    amp: str = _amp_option()


@dataclasses.dataclass(kw_only=True)
class ExportOptions(_Reading):
    """``gluonbert export``: a fine-tuned folder as ONNX (checked under onnxruntime on random
    batches and on ``data``) or, ``to='hf'``, as an HF task folder."""
    command: ClassVar[str] = 'export'
    model: str = option(help='fine-tuned folder')
    to: str = option('onnx', 'onnx (default), or hf: an HF transformers task folder',
                     choices=list(EXPORT_OUT))
    data: str = option(None, 'a labelled file whose first 64 examples are checked besides '
                       'random ones (snli/sick: their test split)')
    data_dir: str = option(None, 'snli/sick: where to find their data')
    int8: bool = option(False, 'also write a dynamic-int8 quantized model.int8.onnx')
    out: str = option(None, 'folder to write (default: runs/onnx, or runs/hf with --to hf)')

    def __post_init__(self):
        super().__post_init__()
        if self.out is None:
            self.out = EXPORT_OUT[self.to]


# export's options that only the ONNX export reads (the checks under onnxruntime, int8)
ONNX_ONLY = ('int8', 'data', 'data_dir', 'text_columns', 'label_column', 'format', 'quoting')


@dataclasses.dataclass(kw_only=True)
class PredictOptions(Options):
    """``gluonbert predict``: predictions of a fine-tuned folder for lines of text."""
    command: ClassVar[str] = 'predict'
    model: str = option(help='fine-tuned folder')
    input: str = option('-', 'file of input lines (default: stdin)', positional=True)
    batch_size: int = option(64, type=types.positive_int)
    amp: str = _amp_option()


@dataclasses.dataclass(kw_only=True)
class SplitOptions(Options):
    """``gluonbert split``: train/dev/test files from one labelled file, by passage."""
    command: ClassVar[str] = 'split'
    file: str = option(help='SQuAD v1.1 .json, or .csv/.tsv/.jsonl', positional=True)
    out: str = option(help='new folder for the split files')
    by: str = option('context', 'tables: rows with equal values of this column stay together '
                     '(default: %(default)s, as Cosmos QA)')
    dev_fraction: float = option(0.1, 'share of the examples in dev (default: %(default)s)',
                                 type=types.probability)
    test_fraction: float = option(0.1, 'share of the examples in test (default: %(default)s)',
                                  type=types.probability)
    seed: int = option(0, type=types.seed)


# Each command's options, by command name
COMMANDS = {cls.command: cls for cls in (MainOptions, PretrainOptions, FinetuneOptions,
                                         EvaluateOptions, ExportOptions, PredictOptions,
                                         SplitOptions)}
