"""ONNX export of fine-tuned heads: onnxruntime equals MXNet, for every head, in either npx mode."""
import json

import numpy as onp
import onnx
import pytest
import mxnet as mx
from mxnet import init
from mxnet.gluon import nn
from mxnet.util import is_np_array

import gluonbert
from gluonbert.export import export_onnx, inference_session
from gluonbert.export.opset import OPSET, graph_checks_at
from gluonbert.export.verify import VerificationReport, mxnet_outputs
from gluonbert.export.signature import signature_of
from gluonbert.model.legacy import LegacyHybridBlock
from gluonbert.model.heads import (BERTForMultipleChoice, BERTForQuestionAnswering,
                                   BERTForSequenceClassification, BERTForTokenClassification)

MAX_LEN = 12
VOCAB = ['<unk>', '<pad>', '<cls>', '<sep>', '<mask>'] + [f'word{i}' for i in range(35)]
NLI_LABELS = ('entailment', 'contradiction', 'neutral')
# Per block: fused Q/K/V, W_o, two FFN layers; then hidden and output
DENSE_LAYERS = 2 * 4 + 2


def tiny_bert(seed=0):
    mx.random.seed(seed)
    bert = gluonbert.BERTModel(len(VOCAB), 32, 48, 2, 2, 0.1, max_len=16)
    bert.initialize(init.Xavier())
    return bert


def with_output(head):
    head.output.initialize(init.Xavier())
    return head


HEADS = {  # head, label_names
    'BERTClassifier': (lambda bert: gluonbert.BERTClassifier(bert, 3), NLI_LABELS),
    'classification': (lambda bert: BERTForSequenceClassification(bert, 3), NLI_LABELS),
    'regression': (lambda bert: BERTForSequenceClassification(bert, 1), ('relatedness',)),
    'token_classification': (lambda bert: BERTForTokenClassification(bert, 4),
                             ('O', 'B-PER', 'I-PER', 'B-LOC')),
    'question_answering': (lambda bert: BERTForQuestionAnswering(bert), None),
    'multiple_choice': (lambda bert: BERTForMultipleChoice(bert), None),
}


def feeds(batch_size, seq_len, choices=None, seed=1):
    rng = onp.random.RandomState(seed)
    lead = (batch_size,) if choices is None else (batch_size, choices)
    lens = rng.randint(1, seq_len + 1, lead)
    segments = (onp.arange(seq_len) >= seq_len // 2) & (onp.arange(seq_len) < lens[..., None])
    return {'tokens': rng.randint(0, len(VOCAB), lead + (seq_len,)),
            'segments': segments.astype(onp.int64), 'valid_lens': lens.astype(onp.int64)}


@pytest.fixture(scope='module')
def classifier_export(tmp_path_factory):
    net = with_output(gluonbert.BERTClassifier(tiny_bert(), 3))
    folder = tmp_path_factory.mktemp('export') / 'snli'
    report = export_onnx(net, folder, VOCAB, NLI_LABELS, MAX_LEN, quantize=True)
    return net, folder, report


@pytest.mark.parametrize('kind', list(HEADS))
def test_every_head_exports_and_onnxruntime_equals_mxnet(kind, tmp_path):
    make, labels = HEADS[kind]
    head = with_output(make(tiny_bert()))
    report = export_onnx(head, tmp_path / kind, VOCAB, labels, MAX_LEN)
    assert report.max_abs_diff < 1e-4
    signature = signature_of(head)
    session = inference_session(str(tmp_path / kind / 'model.onnx'))
    batch = feeds(3, 9, choices=2 if kind == 'multiple_choice' else None)
    for got, expected in zip(session.run(None, batch), mxnet_outputs(head, signature, batch)):
        onp.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)


def test_each_head_exports_as_the_task_whose_head_it_is_and_presets_as_their_task():
    for kind, (make, labels) in HEADS.items():
        signature = signature_of(make(tiny_bert()))
        assert signature.task == ('classification' if kind == 'BERTClassifier' else kind)
        unlabelled = kind in ('regression', 'question_answering', 'multiple_choice')
        assert signature.num_labels == (None if unlabelled else len(labels))
    from gluonbert.tasks import get_task
    net = get_task('snli').head(tiny_bert(), NLI_LABELS)
    assert signature_of(net).task == 'classification'


def test_verification_covers_length_one_and_max_len_at_several_batch_sizes(classifier_export):
    _, _, report = classifier_export
    shapes = {tuple(batch['shape']) for batch in report.verification.batches}
    assert {shape[1] for shape in shapes} >= {1, MAX_LEN}
    assert len({shape[0] for shape in shapes}) >= 3


def test_tolerance_is_absolute_but_not_finer_than_float32_at_the_value():
    report = VerificationReport(tolerance=1e-4)
    one_step_at_1e4 = onp.spacing(onp.float32(1e4))  # 1e-3: question answering's mask value
    assert report.add('qa', (1, 2), [onp.float32([-1e4, 0.5]) - [one_step_at_1e4, 0]],
                      [onp.float32([-1e4, 0.5])])
    assert not report.add('logits', (1, 1), [onp.float32([0.5002])], [onp.float32([0.5])])
    assert report.max_abs_diff == pytest.approx(one_step_at_1e4)
    assert report.max_beyond_float32 == pytest.approx(2e-4, rel=1e-2)


def test_real_examples_are_verified_at_their_own_lengths(tmp_path):
    net = with_output(gluonbert.BERTClassifier(tiny_bert(), 3))
    tokens = onp.random.RandomState(0).randint(0, len(VOCAB), (20, MAX_LEN))
    segments = onp.zeros_like(tokens)
    valid_lens = onp.random.RandomState(1).randint(3, 9, 20).astype('float32')
    report = export_onnx(net, tmp_path / 'm', VOCAB, NLI_LABELS, MAX_LEN,
                         examples=(tokens, segments, valid_lens))
    real = [batch for batch in report.verification.batches if batch['source'] == 'real']
    assert {b['shape'][0] for b in real} == {1, 4, 16}
    assert any(b['shape'][1] < MAX_LEN for b in real)
    assert max(b['max_abs_diff'] for b in real) < 1e-4


def test_inputs_are_named_int64_with_dynamic_batch_and_sequence_axes(classifier_export):
    _, folder, _ = classifier_export
    session = inference_session(str(folder / 'model.onnx'))
    inputs = {i.name: (i.type, i.shape) for i in session.get_inputs()}
    assert inputs == {'tokens': ('tensor(int64)', ['batch', 'seq']),
                      'segments': ('tensor(int64)', ['batch', 'seq']),
                      'valid_lens': ('tensor(int64)', ['batch'])}
    assert [(o.name, o.shape) for o in session.get_outputs()] == [('logits', ['batch', 3])]
    for batch_size, seq_len in [(1, 1), (7, MAX_LEN), (2, 5)]:
        assert session.run(None, feeds(batch_size, seq_len))[0].shape == (batch_size, 3)


def test_question_answering_outputs_are_named_start_and_end_logits(tmp_path):
    head = with_output(BERTForQuestionAnswering(tiny_bert()))
    export_onnx(head, tmp_path / 'qa', VOCAB, None, MAX_LEN)
    session = inference_session(str(tmp_path / 'qa' / 'model.onnx'))
    assert [o.name for o in session.get_outputs()] == ['start_logits', 'end_logits']


def test_vocab_and_labels_are_written_beside_the_model_and_into_its_metadata(classifier_export):
    _, folder, _ = classifier_export
    assert json.loads((folder / 'vocab.json').read_text(encoding='utf-8')) == VOCAB
    assert json.loads((folder / 'labels.json').read_text(encoding='utf-8')) == list(NLI_LABELS)
    meta = {p.key: p.value for p in onnx.load(str(folder / 'model.onnx')).metadata_props}
    assert json.loads(meta['vocab']) == VOCAB
    assert json.loads(meta['label_names']) == list(NLI_LABELS)
    assert json.loads(meta['max_len']) == MAX_LEN
    assert json.loads(meta['head']) == 'BERTClassifier'
    description = json.loads((folder / 'export.json').read_text())
    assert description['verification']['max_abs_diff'] < 1e-4
    assert sorted(p.name for p in folder.iterdir()) == sorted(description['files'])


def test_model_declares_opset_13_and_passes_the_full_onnx_check(classifier_export):
    _, folder, _ = classifier_export
    model = onnx.load(str(folder / 'model.onnx'))
    assert [(o.domain, o.version) for o in model.opset_import] == [('', OPSET)]
    onnx.checker.check_model(model, full_check=True)


def test_weights_are_initializers_not_graph_inputs(classifier_export):
    _, folder, _ = classifier_export
    model = onnx.load(str(folder / 'model.onnx'))
    assert [i.name for i in model.graph.input] == ['tokens', 'segments', 'valid_lens']
    read = {name for node in model.graph.node for name in node.input}
    assert all(t.name in read for t in model.graph.initializer)


def test_attention_projects_q_k_v_in_one_product_and_the_model_is_left_as_it_was(
        classifier_export):
    net, folder, _ = classifier_export
    model = onnx.load(str(folder / 'model.onnx'))
    assert [node.op_type for node in model.graph.node].count('Gemm') == DENSE_LAYERS
    assert all('hybrid_forward' not in blk.attention.__dict__ for blk in net.encoder.blks)


def test_export_leaves_the_onnx_opset_and_checker_of_the_process_unchanged(tmp_path):
    opset, check_graph = onnx.defs.onnx_opset_version(), onnx.checker.check_graph
    default_opsets = dict(onnx.checker.DEFAULT_CONTEXT.opset_imports)
    export_onnx(with_output(gluonbert.BERTClassifier(tiny_bert(), 3)), tmp_path / 'm', VOCAB,
                NLI_LABELS, MAX_LEN)
    assert onnx.defs.onnx_opset_version() == opset
    assert onnx.checker.check_graph is check_graph
    assert dict(onnx.checker.DEFAULT_CONTEXT.opset_imports) == default_opsets


def test_graph_checks_are_restored_when_the_conversion_fails():
    check_graph = onnx.checker.check_graph
    with pytest.raises(KeyError):
        with graph_checks_at(OPSET):
            assert onnx.checker.check_graph is not check_graph
            raise KeyError('conversion failed')
    assert onnx.checker.check_graph is check_graph


def test_export_works_after_set_np_and_keeps_numpy_mode(np_mode, tmp_path):
    net = with_output(gluonbert.BERTClassifier(tiny_bert(), 3))
    batch = feeds(2, 6)
    expected = net(tuple(mx.np.array(batch[k], dtype=d) for k, d in
                         (('tokens', 'int32'), ('segments', 'int32'),
                          ('valid_lens', 'float32')))).asnumpy()
    report = export_onnx(net, tmp_path / 'm', VOCAB, NLI_LABELS, MAX_LEN)
    assert report.max_abs_diff < 1e-4 and is_np_array()
    got = inference_session(str(tmp_path / 'm' / 'model.onnx')).run(None, batch)[0]
    onp.testing.assert_allclose(got, expected, atol=1e-4)


def test_hybridized_model_exports_the_same_graph(tmp_path):
    net = with_output(gluonbert.BERTClassifier(tiny_bert(), 3))
    net.hybridize(static_alloc=True, static_shape=True)
    report = export_onnx(net, tmp_path / 'm', VOCAB, NLI_LABELS, MAX_LEN)
    assert report.max_abs_diff < 1e-4


def test_int8_model_quantizes_every_dense_layer_and_stays_close(classifier_export):
    net, folder, report = classifier_export
    model = onnx.load(str(folder / 'model.int8.onnx'))
    ops = [node.op_type for node in model.graph.node]
    assert 'Gemm' not in ops and ops.count('MatMulInteger') == DENSE_LAYERS
    assert {p.key for p in model.metadata_props} >= {'vocab', 'label_names', 'max_len'}
    batch = feeds(4, MAX_LEN)
    got = inference_session(str(folder / 'model.int8.onnx')).run(None, batch)[0]
    expected = mxnet_outputs(net, signature_of(net), batch)[0]
    assert 0 < onp.abs(got - expected).max() < 0.1 * onp.abs(expected).max()
    assert 0 < report.int8_max_abs_diff < 0.1 * onp.abs(expected).max()


def test_exporting_again_needs_overwrite_and_then_replaces_the_folder(tmp_path):
    net = with_output(gluonbert.BERTClassifier(tiny_bert(), 3))
    export_onnx(net, tmp_path / 'm', VOCAB, NLI_LABELS, MAX_LEN, quantize=True)
    with pytest.raises(FileExistsError, match='overwrite=True'):
        export_onnx(net, tmp_path / 'm', VOCAB, NLI_LABELS, MAX_LEN)
    export_onnx(net, tmp_path / 'm', VOCAB, NLI_LABELS, MAX_LEN, overwrite=True)
    assert not (tmp_path / 'm' / 'model.int8.onnx').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m']


class PooledScorer(LegacyHybridBlock):
    """A user's own head, called with three arguments: max-pooled encodings -> two scores."""

    def __init__(self, bert, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.encoder = bert.encoder
            self.scorer = nn.Dense(2, in_units=bert.encoder.num_hiddens)

    def hybrid_forward(self, F, tokens, segments, valid_lens):
        return self.scorer(F.max(self.encoder(tokens, segments, valid_lens), axis=1))


def test_any_hybrid_head_over_the_encoder_exports_with_given_output_names(tmp_path):
    head = PooledScorer(tiny_bert())
    head.scorer.initialize(init.Xavier())
    report = export_onnx(head, tmp_path / 'm', VOCAB, None, MAX_LEN, output_names=('scores',))
    assert report.max_abs_diff < 1e-4 and report.outputs == {'scores': None}
    session = inference_session(str(tmp_path / 'm' / 'model.onnx'))
    assert session.run(['scores'], feeds(3, 5))[0].shape == (3, 2)
