"""``snli`` and ``sick``: classification with d2l's NLI labels (entailment, contradiction,
neutral, in that id order) and each data set's own files.

``--train``/``--dev``/``--test`` take SNLI's original ``snli_1.0_<split>.txt`` or one of the
InferSent-format files ``s1/s2/labels.<split>`` (its two siblings are read with it), and
SICK-format TSV files (``sentence_A``, ``sentence_B``, ``entailment_label``). Without them,
``default_splits`` finds the data as ``gluonbert finetune`` always has (``--data-dir``,
``$GLUONBERT_DATA``, ``../shared/data``): SICK's TRAIN, TRIAL and TEST; SNLI's train (the dev
split where only dev and test are here) less every tenth pair, kept for dev, and its test.
"""
import os

from .base import TaskDataError
from .classification import ClassificationTask
from .sentences import TextExample, read_text_examples
from .splits import hold_out

NLI_LABELS = ('entailment', 'contradiction', 'neutral')  # d2l's order: label id = index
_INFERSENT_PREFIXES = ('s1.', 's2.', 'labels.')


def _examples(triple, source):
    premises, hypotheses, label_ids = triple
    return [TextExample((p, h), NLI_LABELS[label], f'{source}, pair {number}')
            for number, (p, h, label) in enumerate(zip(premises, hypotheses, label_ids), 1)]


class _NLIPreset(ClassificationTask):
    """Classification whose label set is d2l's three NLI labels, whatever a split holds."""

    def __init__(self, texts=2):  # premise and hypothesis
        super().__init__(texts)

    def labels_from(self, examples):
        unknown = sorted({e.label for e in examples} - set(NLI_LABELS))
        if unknown:
            raise TaskDataError(f'{self.name}: labels {unknown} are not NLI labels '
                                f'{list(NLI_LABELS)}')
        return list(NLI_LABELS)


class SNLITask(_NLIPreset):
    name = 'snli'

    def read(self, path, **columns):
        from ..data.nli import read_snli_infersent
        name = os.path.basename(path)
        prefix = next((p for p in _INFERSENT_PREFIXES if name.startswith(p)), None)
        if prefix is not None:
            split = name[len(prefix):]
            return _examples(read_snli_infersent(os.path.dirname(path) or '.', split), path)
        examples = read_text_examples(path, ('sentence1', 'sentence2'), 'gold_label')
        return [e for e in examples if e.label in NLI_LABELS]  # '-': no gold label (as d2l)

    def default_splits(self, data_dir=None, fallback=None):
        from ..data.nli import load_snli
        train, test = load_snli(data_dir, fallback=fallback)
        train, dev = hold_out(_examples(train, 'SNLI train'))
        return train, dev, _examples(test, 'SNLI test')


class SICKTask(_NLIPreset):
    name = 'sick'

    def read(self, path, **columns):
        examples = read_text_examples(path, ('sentence_A', 'sentence_B'), 'entailment_label')
        for example in examples:
            example.label = example.label.lower()
        return examples

    def default_splits(self, data_dir=None, fallback=None):
        from ..data.nli import locate_sick, read_sick
        path = locate_sick(data_dir)
        return tuple(_examples(read_sick(path, split), f'{path} {split}')
                     for split in ('TRAIN', 'TRIAL', 'TEST'))
