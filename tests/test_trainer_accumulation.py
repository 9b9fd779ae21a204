"""Gradient accumulation: N micro-batches make the update of the batch they came from."""
import numpy as np
import pytest

from gluonbert.train.trainer import BERTTrainer
from tiny_bert import random_batch, summed_loss, tiny_classifier, values


def split_micro_batches(batch, accumulate):
    """``accumulate`` equal slices of every array of ``batch`` (along the samples)."""
    size = batch[0].shape[0] // accumulate
    return [tuple(array[k * size:(k + 1) * size] for array in batch) for k in range(accumulate)]


def train(accumulate, batches):
    net, _ = tiny_classifier()
    trainer = BERTTrainer(net, 'adamw', lr=1e-2, accumulate=accumulate, quiet=True)
    actions = []
    for batch in batches:
        for micro in split_micro_batches(batch, accumulate):
            trainer.backward(summed_loss(net, micro))
            actions.append(trainer.step(micro[0].shape[0]).action)
    return values(trainer.named), actions


def test_four_micro_batches_update_as_one_batch_of_four_times_the_size():
    rng = np.random.RandomState(0)
    batches = [random_batch(rng, 8) for _ in range(3)]
    whole, _ = train(1, batches)
    accumulated, actions = train(4, batches)
    assert actions == (['accumulating'] * 3 + ['applied']) * 3
    # Adam moves every weight by about lr = 1e-2 per update; sums in another order differ
    # by float32 rounding. W_k's bias has a zero gradient up to rounding (softmax ignores a
    # shift), which Adam's normalisation turns into steps of any size up to lr: it is only
    # checked to have moved no more than that.
    for name in whole:
        noise_only = name.endswith('W_k.bias')
        np.testing.assert_allclose(accumulated[name], whole[name], rtol=1e-5,
                                   atol=3 * 1e-2 if noise_only else 1e-5, err_msg=name)


@pytest.mark.parametrize('accumulate', [0, 2.5])
def test_accumulate_must_be_a_positive_integer(accumulate):
    net, _ = tiny_classifier(hybridize=False)
    with pytest.raises(ValueError, match=f'accumulate={accumulate}'):
        BERTTrainer(net, lr=1e-3, accumulate=accumulate, quiet=True)
