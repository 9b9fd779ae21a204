"""Natural language inference data: SNLI (d2l's original files and the InferSent-format
dev/test files) and SICK, and the d2l chapter's ``SNLIBERTDataset``.

Every reader returns d2l's triple ``(premises, hypotheses, labels)`` with d2l's label ids
(entailment 0, contradiction 1, neutral 2), so the chapter's code runs on any of them.
"""
import io
import logging
import os
import re
from pathlib import Path

import numpy as np
from mxnet import gluon

from .locate import (DOWNLOAD_DISABLED, DataNotFoundError, candidate_folders, d2l_download,
                     download_enabled)
from .segments import get_tokens_and_segments
from .vocab import Vocab

LABELS = ('entailment', 'contradiction', 'neutral')  # d2l's order: label id = index
_LABEL_IDS = {name: i for i, name in enumerate(LABELS)}
SICK_SPLITS = ('TRAIN', 'TRIAL', 'TEST')


_logger = logging.getLogger(__name__)


class NLIFormatError(ValueError):
    """A data file that does not have the expected format; the message names file and line."""


# The NLI tasks gluonbert fine-tunes on: SNLI (dev/test here) and SICK (TRAIN/TEST)
TASKS = ('snli', 'sick')

def embedded_snli_dir():
    """The real SNLI slice shipped with gluonbert (3,000 dev and 1,000 test pairs)."""
    return str(Path(__file__).resolve().parent / 'corpus' / 'snli-slice')


def _snli_format(folder):
    """'infersent' (s1/s2/labels files), 'original' (snli_1.0_*.txt) or None."""
    folder = Path(folder)
    if (folder / 's1.dev').is_file() or (folder / 's1.test').is_file():
        return 'infersent'
    if (folder / 'snli_1.0_test.txt').is_file():
        return 'original'
    return None


def locate_snli(data_dir=None, *, download=True, fallback=None):
    """``(folder, format)`` of SNLI: ``data_dir``; ``$GLUONBERT_DATA/snli-1.0-devtest`` or
    ``$GLUONBERT_DATA/snli_1.0``; ``../shared/data/snli-1.0-devtest``; d2l's cache
    ``../data/snli_1.0``; d2l's download (unless disabled); the embedded slice if
    ``fallback='embedded'``. ``format`` is 'infersent' or 'original' (d2l's files)."""
    if fallback not in (None, 'embedded'):
        raise ValueError(f"fallback must be None or 'embedded', got {fallback!r}")
    if data_dir is not None:
        found = _snli_format(data_dir)
        if found is None:
            raise DataNotFoundError(f'data_dir: {data_dir!r} holds neither s1.dev/s1.test '
                                    f'(InferSent format) nor snli_1.0_test.txt (original)')
        return str(data_dir), found
    places = {}
    env = os.environ.get('GLUONBERT_DATA')
    if env:
        for name in ('snli-1.0-devtest', 'snli_1.0'):
            places[Path(env) / name] = '$GLUONBERT_DATA'
    places.update(candidate_folders('snli-1.0-devtest'))
    places.update(candidate_folders('snli_1.0', d2l_name='snli_1.0'))
    for folder, source in places.items():
        found = _snli_format(folder)
        if found is not None:
            return str(folder), found
    looked = [f'{folder} ({source})' for folder, source in places.items()]
    if download_enabled(download):
        folder, outcome = d2l_download('SNLI', None, 'SNLI')
        if folder is not None:
            return str(folder), 'original'
        looked.append(outcome)
    else:
        looked.append(DOWNLOAD_DISABLED)
    if fallback == 'embedded':
        _logger.warning('SNLI not found (looked in: %s); using the small embedded slice %s',
                        '; '.join(looked), embedded_snli_dir())
        return embedded_snli_dir(), 'infersent'
    raise DataNotFoundError('SNLI not found. Looked in: ' + '; '.join(looked) + '. Pass '
                            "data_dir=, set GLUONBERT_DATA, or pass fallback='embedded'.")


def load_snli(data_dir=None, *, fallback=None, download=True):
    """SNLI ``(train, test)`` triples. With the InferSent-format files (no train split here),
    train is the dev split and test the test split; with d2l's files, train and test."""
    folder, found = locate_snli(data_dir, download=download, fallback=fallback)
    if found == 'original':
        return read_snli(folder, True), read_snli(folder, False)
    return read_snli_infersent(folder, 'dev'), read_snli_infersent(folder, 'test')


def locate_sick(data_dir=None):
    """The path of ``SICK.txt``: ``data_dir``, ``$GLUONBERT_DATA/sick``, ``../shared/data/sick``."""
    places = {Path(data_dir): 'data_dir'} if data_dir is not None else {}
    if data_dir is None and os.environ.get('GLUONBERT_DATA'):
        places[Path(os.environ['GLUONBERT_DATA']) / 'sick'] = '$GLUONBERT_DATA'
    if data_dir is None:
        places.update(candidate_folders('sick'))
    for folder in places:
        if (folder / 'SICK.txt').is_file():
            return str(folder / 'SICK.txt')
    raise DataNotFoundError('SICK.txt not found. Looked in: ' + '; '.join(
        f'{folder} ({source})' for folder, source in places.items()))


def read_snli(data_dir, is_train):
    """d2l's ``read_snli`` on the original ``snli_1.0_{train,test}.txt`` files.

    Rows without a gold label ('-') are dropped, as in d2l.
    """
    def extract_text(s):
        s = re.sub('\\(', '', s)
        s = re.sub('\\)', '', s)
        s = re.sub('\\s{2,}', ' ', s)
        return s.strip()
    file_name = os.path.join(data_dir, 'snli_1.0_train.txt' if is_train else 'snli_1.0_test.txt')
    with io.StringIO(_read_text(file_name)) as f:
        rows = [row.split('\t') for row in f.readlines()[1:]]
    rows = [row for row in rows if row[0] in _LABEL_IDS]
    return ([extract_text(row[1]) for row in rows], [extract_text(row[2]) for row in rows],
            [_LABEL_IDS[row[0]] for row in rows])


def _read_text(path, newline=None):
    """The text of the UTF-8 file ``path``; NLIFormatError naming it when it is not UTF-8."""
    try:
        with open(path, 'r', encoding='utf-8', newline=newline) as f:
            return f.read()
    except UnicodeDecodeError as error:
        raise NLIFormatError(f'{path}: not UTF-8 (byte '
                             f'{error.object[error.start:error.start + 1]!r} cannot be decoded); '
                             f'expected a UTF-8 text file') from None


def _read_lines(path):
    with io.StringIO(_read_text(path)) as f:
        lines = [line.strip() for line in f]
    for number, line in enumerate(lines, 1):
        if not line:
            raise NLIFormatError(f'{path}, line {number}: empty line; expected one sentence '
                                 f'or label per line')
    return lines


def read_snli_infersent(data_dir, split):
    """SNLI in the InferSent format: line-aligned ``s1.<split>``, ``s2.<split>``,
    ``labels.<split>`` (tokenized sentences, one per line)."""
    paths = [os.path.join(data_dir, f'{name}.{split}') for name in ('s1', 's2', 'labels')]
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{path} not found; expected the InferSent-format files '
                                    f's1.{split}, s2.{split} and labels.{split} in {data_dir}')
    premises, hypotheses, label_names = (_read_lines(path) for path in paths)
    counts = {os.path.basename(p): len(lines) for p, lines in
              zip(paths, (premises, hypotheses, label_names))}
    if len(set(counts.values())) != 1:
        raise NLIFormatError(f'files of split {split!r} in {data_dir} differ in line count '
                             f'{counts}; expected line-aligned files')
    return premises, hypotheses, _label_ids(label_names, paths[2])


def _label_ids(names, path, line_offset=1):
    ids = []
    for number, name in enumerate(names, line_offset):
        label = _LABEL_IDS.get(name.lower())
        if label is None:
            raise NLIFormatError(f'{path}, line {number}: label {name!r} is not one of {LABELS}')
        ids.append(label)
    return ids


def read_sick(path, split, target='label'):
    """One split ('TRAIN', 'TRIAL' or 'TEST') of ``SICK.txt``.

    ``target='label'`` gives the 3-way entailment label ids; ``target='relatedness'`` gives
    the relatedness score (1 to 5, floats) for regression.
    """
    if split not in SICK_SPLITS:
        raise ValueError(f'split={split!r}; expected one of {SICK_SPLITS}')
    if target not in ('label', 'relatedness'):
        raise ValueError(f"target={target!r}; expected 'label' or 'relatedness'")
    rows = [line.rstrip('\r\n').split('\t') for line in _read_text(path, newline='').split('\n')
            if line]
    header = rows[0]
    try:
        columns = [header.index(name) for name in ('sentence_A', 'sentence_B',
                                                   'entailment_label', 'relatedness_score',
                                                   'SemEval_set')]
    except ValueError:
        raise NLIFormatError(f'{path}: header {header[:5]} lacks the SICK columns sentence_A, '
                             f'sentence_B, entailment_label, relatedness_score, SemEval_set')
    a, b, label, score, split_column = columns
    numbered = [(number, row) for number, row in enumerate(rows[1:], 2)
                if row[split_column].strip() == split]
    premises = [row[a] for _, row in numbered]
    hypotheses = [row[b] for _, row in numbered]
    if target == 'relatedness':
        return premises, hypotheses, [float(row[score]) for _, row in numbered]
    labels = []
    for number, row in numbered:
        labels.extend(_label_ids([row[label]], path, number))
    return premises, hypotheses, labels


def _tokenize(sentences):
    return [s.lower().split() for s in sentences]


class SNLIBERTDataset(gluon.data.Dataset):
    """The d2l chapter's dataset: ``<cls> premise <sep> hypothesis <sep>`` token ids, segments
    and valid lengths, padded to ``max_len``, with the chapter's truncation of long pairs.

    ``dataset`` is ``(premises, hypotheses, labels)``; ``vocab`` is the pretrained model's
    (without one, a vocabulary is built from the data: min_freq 5, BERT's reserved tokens).
    Sentences are lower-cased and split on whitespace, as in the chapter, unless a
    ``tokenizer`` (e.g. the ``WordPieceTokenizer`` of an imported checkpoint) is given.
    """

    def __init__(self, dataset, max_len, vocab=None, tokenizer=None):
        if max_len < 5:
            raise ValueError(f"max_len={max_len}; expected >= 5 (room for '<cls>', two "
                             f"'<sep>' and a token of each sentence)")
        tokenize = _tokenize if tokenizer is None else (lambda ss: [tokenizer(s) for s in ss])
        premises, hypotheses = tokenize(dataset[0]), tokenize(dataset[1])
        if not len(premises) == len(hypotheses) == len(dataset[2]):
            raise ValueError(f'dataset holds {len(premises)} premises, {len(hypotheses)} '
                             f'hypotheses and {len(dataset[2])} labels; expected equal counts')
        if vocab is None:
            vocab = Vocab(premises + hypotheses, min_freq=5,
                          reserved_tokens=['<pad>', '<mask>', '<cls>', '<sep>'])
        self.vocab, self.max_len = vocab, max_len
        self.labels = np.array(dataset[2])
        (self.all_token_ids, self.all_segments,
         self.valid_lens) = self._preprocess(zip(premises, hypotheses))
        print('read ' + str(len(self.all_token_ids)) + ' examples')

    def _preprocess(self, pairs):
        pad = self.vocab['<pad>']
        token_ids = np.full((len(self.labels), self.max_len), pad, dtype='int32')
        segments = np.zeros((len(self.labels), self.max_len), dtype='int32')
        valid_lens = np.zeros(len(self.labels), dtype='float32')
        for i, (p_tokens, h_tokens) in enumerate(pairs):
            self._truncate_pair_of_tokens(p_tokens, h_tokens)
            tokens, segs = get_tokens_and_segments(p_tokens, h_tokens)
            token_ids[i, :len(tokens)] = self.vocab[tokens]
            segments[i, :len(segs)] = segs
            valid_lens[i] = len(tokens)
        return token_ids, segments, valid_lens

    def _truncate_pair_of_tokens(self, p_tokens, h_tokens):
        # Reserve slots for '<CLS>', '<SEP>', and '<SEP>' tokens for the BERT input
        while len(p_tokens) + len(h_tokens) > self.max_len - 3:
            if len(p_tokens) > len(h_tokens):
                p_tokens.pop()
            else:
                h_tokens.pop()

    def __getitem__(self, idx):
        return (self.all_token_ids[idx], self.all_segments[idx],
                self.valid_lens[idx]), self.labels[idx]

    def __len__(self):
        return len(self.all_token_ids)
