"""Bad exports fail with an error that says what to do, and leave no file behind."""
import math
import os
from pathlib import Path

import pytest
import mxnet as mx
from mxnet import init
from mxnet.gluon import HybridBlock, nn

import gluonbert
from gluonbert.export import UnsupportedOperatorError, VerificationError, export_onnx
from gluonbert.model.heads import BERTForQuestionAnswering, BERTForSequenceClassification
from gluonbert.model.legacy import LegacyHybridBlock

VOCAB = ['<unk>', '<pad>', '<cls>', '<sep>'] + [f'w{i}' for i in range(26)]
LABELS = ('entailment', 'contradiction', 'neutral')


@pytest.fixture(scope='module')
def bert():
    net = gluonbert.BERTModel(len(VOCAB), 16, 24, 2, 1, 0.0, max_len=16)
    net.initialize(init.Xavier())
    return net


@pytest.fixture(scope='module')
def classifier(bert):
    net = gluonbert.BERTClassifier(bert, 3)
    net.output.initialize(init.Xavier())
    return net


def files_under(path):
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob('*'))


class ErfGELU(HybridBlock):
    """GELU written with ``erf``, an operator mx2onnx has no converter for."""

    def hybrid_forward(self, F, x):
        return 0.5 * x * (1 + F.erf(x / math.sqrt(2)))


class ErfGELUHead(LegacyHybridBlock):
    def __init__(self, bert, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.encoder = bert.encoder
            self.activation = ErfGELU()
            self.output = nn.Dense(2, in_units=bert.encoder.num_hiddens)

    def hybrid_forward(self, F, tokens, segments, valid_lens):
        encoded = self.encoder(tokens, segments, valid_lens)
        cls = F.reshape(F.slice_axis(encoded, axis=1, begin=0, end=1), shape=(0, -1))
        return self.output(self.activation(cls))


class EagerOnlyShift(LegacyHybridBlock):
    """A head whose eager code adds 1 that its graph does not: MXNet and ONNX disagree."""

    def __init__(self, bert, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.encoder = bert.encoder
            self.output = nn.Dense(2, in_units=bert.encoder.num_hiddens)

    def hybrid_forward(self, F, tokens, segments, valid_lens):
        encoded = self.encoder(tokens, segments, valid_lens)
        logits = self.output(F.reshape(F.slice_axis(encoded, axis=1, begin=0, end=1),
                                       shape=(0, -1)))
        return logits + 1 if F is mx.nd else logits


def test_bare_bert_model_is_refused_with_the_heads_to_export_instead(bert, tmp_path):
    with pytest.raises(ValueError, match=r'BERTModel is the pretraining model.*'
                                         r'BERTClassifier\(bert\)'):
        export_onnx(bert, tmp_path / 'm', VOCAB, None, 8)


def test_bare_encoder_is_refused_because_it_outputs_hidden_states(bert, tmp_path):
    with pytest.raises(ValueError, match='BERTEncoder alone outputs hidden states.*'
                                         'BERTForSequenceClassification'):
        export_onnx(bert.encoder, tmp_path / 'm', VOCAB, None, 8)


def test_unsupported_operator_is_named_with_the_block_that_produced_it(bert, tmp_path):
    head = ErfGELUHead(bert)
    head.output.initialize(init.Xavier())
    with pytest.raises(UnsupportedOperatorError,
                       match=r"operator 'erf' in node '\w*erfgelu0_erf0' of block "
                             r"'activation' \(ErfGELU\)"):
        export_onnx(head, tmp_path / 'm', VOCAB, ('yes', 'no'), 8)
    assert files_under(tmp_path) == []


def test_export_is_refused_and_nothing_written_when_onnxruntime_differs(bert, tmp_path):
    head = EagerOnlyShift(bert)
    head.output.initialize(init.Xavier())
    with pytest.raises(VerificationError, match=r'beyond tolerance=0.0001 on 4 of 4 batches '
                                                r'\(random batch \(1, 1\): 1.00e\+00'):
        export_onnx(head, tmp_path / 'new' / 'nested' / 'm', VOCAB, None, 8)
    assert files_under(tmp_path) == []  # not even the parent folders it created


def test_max_len_beyond_the_position_embedding_is_refused(classifier, tmp_path):
    with pytest.raises(ValueError, match=r'max_len=17; expected an int in \[1, 16\]'):
        export_onnx(classifier, tmp_path / 'm', VOCAB, LABELS, 17)


def test_folder_inside_a_file_is_refused_before_any_work(classifier, tmp_path):
    (tmp_path / 'notes.txt').write_text('not a folder')
    with pytest.raises(NotADirectoryError, match='cannot write to folder=.*notes.txt/m'):
        export_onnx(classifier, tmp_path / 'notes.txt' / 'm', VOCAB, LABELS, 8)
    assert files_under(tmp_path) == ['notes.txt']


def test_folder_in_a_read_only_place_is_refused(classifier, tmp_path):
    if os.geteuid() == 0:  # root writes through permission bits, not into sysfs
        parent = Path('/sys')
    else:
        parent = tmp_path / 'read-only'
        parent.mkdir(mode=0o555)
    with pytest.raises(PermissionError, match=f'cannot write to folder=.*{parent}'):
        export_onnx(classifier, parent / 'm', VOCAB, LABELS, 8)


def test_existing_file_as_folder_is_refused(classifier, tmp_path):
    (tmp_path / 'm').write_text('')
    with pytest.raises(FileExistsError, match='is a file; expected a folder'):
        export_onnx(classifier, tmp_path / 'm', VOCAB, LABELS, 8)


@pytest.mark.parametrize('labels, message', [
    (None, r'label_names=None, but BERTClassifier predicts 3 labels'),
    (('yes', 'no'), r"label_names has 2 names \('yes', 'no'\), but BERTClassifier predicts 3"),
    (('a', 'a', 'b'), 'expected distinct non-empty strings'),
])
def test_label_names_must_name_each_class_once(classifier, tmp_path, labels, message):
    with pytest.raises(ValueError, match=message):
        export_onnx(classifier, tmp_path / 'm', VOCAB, labels, 8)


def test_question_answering_takes_no_label_names(bert, tmp_path):
    head = BERTForQuestionAnswering(bert)
    with pytest.raises(ValueError, match='has no label set .*start_logits, end_logits'):
        export_onnx(head, tmp_path / 'm', VOCAB, ('start', 'end'), 8)


def test_vocab_of_another_size_is_refused(classifier, tmp_path):
    with pytest.raises(ValueError, match='vocab has 29 tokens, but the model\'s token '
                                         'embedding has 30 rows'):
        export_onnx(classifier, tmp_path / 'm', VOCAB[:-1], LABELS, 8)


def test_uninitialized_output_layer_is_named(bert, tmp_path):
    head = BERTForSequenceClassification(bert, 3)
    with pytest.raises(ValueError, match=r"parameter '\w+dense\d_weight' of the model has no "
                                         r'value .*initialize'):
        export_onnx(head, tmp_path / 'm', VOCAB, LABELS, 8)
    assert files_under(tmp_path) == []


def test_a_block_that_cannot_be_hybridized_is_refused(bert, tmp_path):
    class EagerHead(nn.Block):  # the d2l chapter's classifier is such a Block
        def __init__(self):
            super().__init__()
            self.encoder, self.output = bert.encoder, nn.Dense(3)

    with pytest.raises(TypeError, match=r'model \(EagerHead\) is not a HybridBlock'):
        export_onnx(EagerHead(), tmp_path / 'm', VOCAB, LABELS, 8)
