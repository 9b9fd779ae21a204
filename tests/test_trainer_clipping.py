"""Clipping by the global gradient norm: each parameter counted once across devices, the
loss scale taken out before the comparison."""
import mxnet as mx
import numpy as np
import pytest

from gluonbert.train.sharding import shard_batch
from gluonbert.train.trainer import BERTTrainer
from tiny_bert import random_batch, summed_loss, tiny_classifier, values

BATCH = random_batch(np.random.RandomState(0), 6)


def one_update(devices=None, **options):
    """``(outcome, gradients, change)`` of one SGD update (lr 1) on ``BATCH``."""
    devices = devices or [mx.cpu(0)]
    net, _ = tiny_classifier(contexts=devices)
    trainer = BERTTrainer(net, 'sgd', lr=1.0, wd=0.0, quiet=True, **options)
    trainer.backward([summed_loss(net, s) for s in shard_batch(BATCH, devices)])
    before = values(trainer.named)
    outcome = trainer.step(6)
    after = values(trainer.named)
    change = {n: after[n] - before[n] for n in before}
    return outcome, change


def norm(arrays):
    return float(np.sqrt(sum(float((a.astype('float64') ** 2).sum()) for a in arrays)))


def test_the_norm_is_that_of_the_mean_gradient_counted_once_across_devices():
    single, change = one_update()
    double, _ = one_update([mx.cpu(0), mx.cpu(1)])
    # One SGD step with lr 1 moves each weight by minus its mean gradient
    assert single.grad_norm == pytest.approx(norm(change.values()), rel=1e-4)
    assert double.grad_norm == pytest.approx(single.grad_norm, rel=1e-5)


def test_clipping_scales_the_whole_update_to_the_maximum_norm():
    unclipped, full = one_update()
    clip = unclipped.grad_norm / 4
    clipped, change = one_update(clip=clip)
    assert clipped.grad_norm == pytest.approx(unclipped.grad_norm, rel=1e-6)
    assert norm(change.values()) == pytest.approx(clip, rel=1e-4)
    for name in full:  # the same direction: every parameter scaled by the same factor
        np.testing.assert_allclose(change[name], full[name] / 4, rtol=1e-3, atol=1e-7)


def test_clipping_on_two_devices_equals_clipping_on_one():
    unclipped, _ = one_update()
    _, one = one_update(clip=unclipped.grad_norm / 3)
    _, two = one_update([mx.cpu(0), mx.cpu(1)], clip=unclipped.grad_norm / 3)
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-4, atol=1e-7)


def test_a_norm_below_the_maximum_leaves_the_update_alone():
    unclipped, full = one_update()
    _, change = one_update(clip=unclipped.grad_norm * 2)
    for name in full:
        np.testing.assert_array_equal(change[name], full[name])


def test_the_loss_scale_is_taken_out_before_clipping():
    unclipped, _ = one_update()
    clip = unclipped.grad_norm / 2
    plain, expected = one_update(clip=clip)
    scaled, change = one_update(clip=clip, loss_scale=1024.0)
    assert scaled.grad_norm == pytest.approx(plain.grad_norm, rel=1e-5)
    for name in expected:
        np.testing.assert_allclose(change[name], expected[name], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('clip', [0.0, -1.0])
def test_a_non_positive_maximum_norm_is_an_error(clip):
    net, _ = tiny_classifier(hybridize=False)
    with pytest.raises(ValueError, match=f'clip={clip}'):
        BERTTrainer(net, lr=1e-3, clip=clip, quiet=True)
