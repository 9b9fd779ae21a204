"""The contract every fine-tuning task follows, and the parts most tasks share.

A task is one way of reading files and scoring a model on them:

    files --read--> examples --encode--> Features --(engine, objective)--> trained head
    Features --predict--> outputs --postprocess--> predictions --metrics--> {name: value}

``Task`` methods, in data-flow order:

- ``settings()`` and ``fit_to(max_len)``: the task's own options as a JSON-able dict
  (``get_task(name, **settings)`` rebuilds the task; saved with a model and its export) and
  the check, before any data is read, that they fit sequences of ``max_len`` tokens;
- ``read(path, **columns)``: the raw examples of one file (a list); a bad row is a
  ``TaskDataError`` naming the file and line;
- ``labels_from(examples)``: the label set of the training split (a sorted list, saved with
  the model), or None for tasks without one (regression, QA, multiple choice);
- ``check_gold(examples, labels)``: the check, before any training, that a dev or test split
  can be scored: every example has a gold label, and one of the training ``labels``;
- ``encode(examples, tokenizer, vocab, max_len, labels)``: ``Features``, numpy arrays in the
  head's input layout (``tokens``, ``segments``, ``valid_lens``), the training targets
  (``labels``) and the map from feature rows back to examples; ``tokenizer`` is a callable
  text -> token strings (``gluonbert.data.tokenization``);
- ``head(bert, labels)``: the ``gluonbert.model.heads`` block to fine-tune;
- ``objective(net)``: the training engine's ``Objective`` (loss summed over a shard);
- ``predict(net, features, devices, batch_size)``: the head's raw outputs (numpy);
- ``postprocess(outputs, features, examples)``: one prediction per example;
- ``metrics(predictions, examples)``: ``{name: value}`` with ``main_metric`` among the keys;
- ``baseline(train_examples, eval_examples)``: the same metrics for a trivial predictor
  (majority class, mean score, always-O, ...), to read the model's numbers against.

Serving (``tasks/serving.py``: ``gluonbert predict`` and ``export/predict.py``) and export:

- ``served_example(fields, where)``: the example of one input line's tab-separated fields,
  and ``check_served(examples)`` for what only the lines together tell;
- ``output_header(label_names, examples)`` and ``output_lines(examples, features,
  outputs)``: what prediction prints, a header (or None) and the lines of a batch;
- ``exported_head(model)`` (a class method): what an exported head of the task returns
  (``ExportedHead``), or None when ``model`` is not one (``export/signature.py``).

No module of ``gluonbert.tasks`` imports MXNet at import time (only inside ``head``,
``objective``, ``predict`` and ``exported_head``): reading, encoding, post-processing and
serving are the code that ``export/predict.py`` runs where only numpy and onnxruntime are
installed.
"""
from dataclasses import dataclass, field

import numpy as np


class TaskDataError(ValueError):
    """A data file or split that a task cannot use; the message names the file (and line)."""


class InputFormatError(TaskDataError):
    """An input line the task cannot read; names the source and line."""


@dataclass(frozen=True)
class ExportedHead:
    """What a task's head returns, as ``export/signature.py`` records it: ``outputs`` maps
    each output's name to its axis names (``batch``, ``seq``, ``choices``; ``labels`` has the
    size of the output layer, ``num_labels``); ``choices``: the inputs hold one sequence per
    candidate (a ``choices`` axis after ``batch``); ``label_kind``: what the export's label
    names name, ``'classes'`` (one name each, in label-id order), ``'score'`` (the one score;
    optional) or None (the head has no label set)."""
    outputs: dict
    num_labels: int = None
    choices: bool = False
    label_kind: str = 'classes'


@dataclass
class Features:
    """A split encoded for a head: numpy arrays with one row per feature (samples on axis 0).

    ``example_index[i]`` is the example that feature row ``i`` comes from (several rows per
    example when long inputs are split into windows); ``extra`` holds what a task needs to map
    outputs back to its examples (word ids of tokens, character offsets, ...).
    """
    tokens: np.ndarray
    segments: np.ndarray
    valid_lens: np.ndarray
    labels: np.ndarray = None
    example_index: np.ndarray = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.example_index is None:
            self.example_index = np.arange(len(self.tokens))

    def __len__(self):
        return len(self.tokens)

    @property
    def inputs(self):
        """``(tokens, segments, valid_lens)``, as the heads take them."""
        return self.tokens, self.segments, self.valid_lens

    @property
    def arrays(self):
        """The arrays a training batch holds: the inputs, then the labels."""
        if self.labels is None:
            raise TaskDataError('these features have no labels; encode a labelled split to '
                                'train or evaluate on it')
        return self.inputs + (self.labels,)


class Task:
    """One fine-tuning task: files -> examples -> features -> head + objective -> predictions
    -> metrics. Subclasses set the class attributes and implement the methods below."""
    name = None
    main_metric = None
    greater_is_better = True
    metrics_note = ''  # how the metrics are computed, when it needs saying (printed)
    # Heads with an output per token: what fills the positions past a prediction batch's cut
    token_pad = None

    def settings(self):
        """The task's own options, as keywords of its constructor (none by default)."""
        return {}

    def fit_to(self, max_len):
        """Check the settings against ``max_len`` (ValueError), filling in those that default
        from it; nothing to do for a task without settings."""

    def read(self, path, **columns):
        """The raw examples of the file ``path``; ``columns`` choose its fields."""
        raise NotImplementedError

    def labels_from(self, examples):
        """The sorted label set of ``examples`` (the training split), or None."""
        return None

    def check_gold(self, examples, labels):
        """TaskDataError naming the file and line of an example of a dev or test split that
        cannot be scored against the training ``labels`` (nothing to check by default)."""

    def encode(self, examples, tokenizer, vocab, max_len, labels):
        """``Features`` of ``examples``; TaskDataError for a label outside ``labels``."""
        raise NotImplementedError

    def head(self, bert, labels):
        """A fresh head over ``bert`` (a ``BERTModel``), its output layer uninitialized."""
        raise NotImplementedError

    def objective(self, net):
        """The engine's Objective for ``net``: the head's own per-example loss, summed."""
        from .objective import HeadObjective
        return HeadObjective(net)

    def predict(self, net, features, devices, batch_size=64):
        """The head's outputs on every feature row, as numpy arrays (a tuple for heads with
        several outputs), in inference mode."""
        from .inference import predict_outputs
        return predict_outputs(net, features, devices, batch_size, self.token_pad)

    def postprocess(self, outputs, features, examples):
        """One prediction per example from the head's ``outputs``."""
        raise NotImplementedError

    def metrics(self, predictions, examples):
        """``{name: value}`` of ``predictions`` against the examples' gold labels."""
        raise NotImplementedError

    def baseline(self, train_examples, eval_examples):
        """The metrics of a trivial predictor fitted on ``train_examples``."""
        raise NotImplementedError

    def served_example(self, fields, where):
        """The example of one served input line, split at tabs into ``fields``;
        InputFormatError naming the line (``where``) when it has the wrong shape."""
        raise NotImplementedError

    def check_served(self, examples):
        """InputFormatError when the served ``examples`` disagree (nothing to check by
        default)."""

    def output_header(self, label_names, examples):
        """The first line prediction prints for ``examples``, or None."""
        return None

    def output_lines(self, examples, features, outputs):
        """The lines prediction prints for a batch of ``examples``, from the head's
        ``outputs`` on their ``features``."""
        raise NotImplementedError

    @classmethod
    def exported_head(cls, model):
        """``ExportedHead`` of ``model`` when it is this task's head, else None."""
        return None

    def evaluate(self, net, features, examples, devices, batch_size=64):
        """``metrics`` of ``net`` on an encoded split: predict, postprocess, score."""
        outputs = self.predict(net, features, devices, batch_size)
        return self.metrics(self.postprocess(outputs, features, examples), examples)


def check_not_empty(examples, source):
    """``examples``, or TaskDataError when the split holds none."""
    if not examples:
        raise TaskDataError(f'{source} holds no example; expected a non-empty split')
    return examples


def check_labelled(examples):
    """TaskDataError naming the file and line (``where``) of the first example without a
    label (a file without the label column)."""
    for example in examples:
        if example.label is None:
            raise TaskDataError(f'{example.where}: no label; this split needs the label '
                                f'column (--label-column)')
