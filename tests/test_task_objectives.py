"""Each task's head, objective and evaluation on a tiny BERT: the objective sums the head's
own per-example loss, and evaluation reports the task's main metric."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, init

import gluonbert
from gluonbert.data.tokenization import WhitespaceTokenizer
from gluonbert.data.vocab import Vocab
from gluonbert.tasks import get_task
from gluonbert.tasks.readers import TaggedSentence
from gluonbert.tasks.sentences import TextExample

TEXTS = ['a good film', 'a bad film', 'good acting here', 'bad acting there', 'a film']
CLASSES = [TextExample((t,), label, 'x') for t, label in zip(TEXTS, 'pnpnp')]
SCORES = [TextExample((t, 'a film'), score, 'x') for t, score in zip(TEXTS, [4, 1, 3.5, 0, 2])]
TAGGED = [TaggedSentence(t.split(), ['O'] * (len(t.split()) - 1) + ['B-X'], 'x') for t in TEXTS]
CASES = [('classification', CLASSES), ('regression', SCORES),
         ('token-classification', TAGGED)]


def tiny(task, examples, devices=(mx.cpu(),)):
    tokenizer = WhitespaceTokenizer()
    vocab = Vocab([w for t in TEXTS for w in t.split()],
                  reserved_tokens=['<pad>', '<cls>', '<sep>', '<mask>'])
    labels = task.labels_from(examples)
    features = task.encode(examples, tokenizer, vocab, 12, labels)
    mx.random.seed(0)
    bert = gluonbert.BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=12)
    bert.initialize(init.Xavier(), ctx=list(devices))
    net = task.head(bert, labels)
    net.output.initialize(init.Xavier(), ctx=list(devices))
    return net, features


@pytest.mark.parametrize('name, examples', CASES, ids=[c[0] for c in CASES])
def test_objective_sums_the_heads_loss_and_counts_examples(name, examples):
    task = get_task(name)
    net, features = tiny(task, examples)
    shard = [mx.nd.array(a) for a in features.arrays]
    with autograd.record(train_mode=False):  # no dropout: comparable with the plain call
        loss, (loss_sum, count) = task.objective(net)(shard, {})
    expected = net.loss(net(tuple(shard[:3])), shard[3])
    np.testing.assert_allclose(loss.asnumpy(), expected.asnumpy(), rtol=1e-5)
    assert float(loss_sum.asscalar()) == pytest.approx(float(expected.sum().asscalar()),
                                                       rel=1e-5)
    assert float(count.asscalar()) == len(features)
    assert task.objective(net).summarize({'loss': 6.0, 'count': 3.0}) == {'loss': 2.0}


@pytest.mark.parametrize('name, examples', CASES, ids=[c[0] for c in CASES])
def test_evaluation_reports_the_main_metric_as_the_baseline_does(name, examples):
    task = get_task(name)
    net, features = tiny(task, examples)
    metrics = task.evaluate(net, features, examples, [mx.cpu()], batch_size=2)
    assert task.main_metric in metrics
    assert set(metrics) == set(task.baseline(examples, examples))


def test_predictions_of_several_batches_match_one_batch():
    task = get_task('token-classification')
    net, features = tiny(task, TAGGED, devices=(mx.cpu(0), mx.cpu(1)))
    one = task.predict(net, features, [mx.cpu()], batch_size=len(features))
    np.testing.assert_allclose(task.predict(net, features, [mx.cpu(0), mx.cpu(1)],
                                            batch_size=3), one, rtol=1e-5, atol=1e-6)


def test_baselines_are_the_trivial_predictors():
    assert get_task('classification').baseline(CLASSES, CLASSES)['accuracy'] == 0.6
    regression = get_task('regression').baseline(SCORES, SCORES)
    assert regression['pearson'] == 0 and regression['mse'] == pytest.approx(2.24)  # mean 2.1
    assert get_task('token-classification').baseline(TAGGED, TAGGED)['f1'] == 0
