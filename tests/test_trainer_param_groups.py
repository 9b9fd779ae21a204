"""Parameter groups: lr/wd multipliers by name pattern, no decay for biases and LayerNorm,
freezing, the table, and the errors."""
import numpy as np
import pytest

from gluonbert.train.named_params import named_parameters
from gluonbert.train.param_groups import format_table, resolve
from gluonbert.train.trainer import BERTTrainer
from tiny_bert import random_batch, summed_loss, tiny_classifier, values


@pytest.fixture
def net():
    return tiny_classifier(hybridize=False)[0]


def sgd_step_deltas(net, trainer, names, rng, updates):
    """Run ``updates`` SGD updates; return, for the last, each name's change and gradient."""
    for _ in range(updates):
        batch = random_batch(rng, 8)
        trainer.backward(summed_loss(net, batch))
        grads = {n: trainer.named[n].grad().asnumpy().copy() for n in names}
        before = values(trainer.named)
        trainer.step(8)
    after = values(trainer.named)
    return {n: after[n] - before[n] for n in names}, grads


def test_lr_of_a_named_parameter_after_n_updates_is_base_times_schedule_times_multiplier(net):
    trainer = BERTTrainer(net, 'sgd', lr=0.1, wd=0.0, schedule='linear', warmup_steps=2,
                          num_training_steps=10, groups={r'^output\.': {'lr_mult': 10}},
                          layerwise_decay=0.5, quiet=True)
    names = ['output.weight', 'encoder.blks.0.ffn.dense1.weight', 'hidden.weight']
    deltas, grads = sgd_step_deltas(net, trainer, names, np.random.RandomState(0), updates=3)
    lr_3 = 0.1 * (10 - 2) / (10 - 2)  # update 3: the linear decay read at 2 updates done
    # output: group x10, depth n+2 -> 1; block 0: depth 1 -> 0.5**3; pooler: depth 3 -> 0.5
    for name, mult in zip(names, [10.0, 0.5 ** 3, 0.5]):
        np.testing.assert_allclose(deltas[name], -lr_3 * mult * grads[name] / 8, rtol=1e-3,
                                   atol=1e-7, err_msg=name)


def test_biases_and_layernorm_get_no_weight_decay_by_default(net):
    settings = resolve(named_parameters(net), {'^encoder': {'wd_mult': 2.0}})
    for s in settings:
        no_decay = s.name.endswith(('.bias', '.gamma', '.beta'))
        expected = 0.0 if no_decay else (2.0 if s.name.startswith('encoder') else 1.0)
        assert s.wd_mult == expected, s.name
    assert {s.name for s in settings if s.wd_mult == 0} >= {
        'encoder.blks.0.addnorm1.ln.gamma', 'encoder.blks.0.addnorm1.ln.beta', 'output.bias'}


def test_the_trainer_sets_each_parameters_multipliers(net):
    trainer = BERTTrainer(net, lr=1e-3, groups={'encoder|hidden': {'lr_mult': 0.1}},
                          quiet=True)
    assert trainer.named['encoder.blks.1.ffn.dense2.weight'].lr_mult == 0.1
    assert trainer.named['hidden.bias'].wd_mult == 0.0
    assert trainer.named['output.weight'].lr_mult == 1.0


def test_frozen_parameters_do_not_move_and_have_no_gradient(net):
    trainer = BERTTrainer(net, lr=0.01, freeze=r'^encoder\.blks\.0\.', quiet=True)
    frozen = [n for n in trainer.named if n.startswith('encoder.blks.0.')]
    assert all(trainer.named[n].grad_req == 'null' for n in frozen)
    before = values(trainer.named)
    batch = random_batch(np.random.RandomState(0), 4)
    trainer.backward(summed_loss(net, batch))
    assert trainer.step(4).action == 'applied'
    after = values(trainer.named)
    assert all(np.array_equal(before[n], after[n]) for n in frozen)
    assert not np.array_equal(before['encoder.blks.1.ffn.dense1.weight'],
                              after['encoder.blks.1.ffn.dense1.weight'])


def test_the_table_shows_every_parameters_effective_lr_and_wd(net):
    named = named_parameters(net)
    settings = resolve(named, {r'^output\.': {'lr_mult': 10}}, freeze=r'segment_embedding')
    table = format_table(settings, lr=2e-5, wd=0.01)
    lines = {line.split()[0]: line.split() for line in table.splitlines()[2:-1]}
    assert set(lines) == set(named)
    assert lines['output.weight'][-2:] == ['0.0002', '0.01']
    assert lines['output.bias'][-2:] == ['0.0002', '0']
    assert lines['encoder.segment_embedding.weight'][-2:] == ['frozen', '-']
    assert lines['hidden.weight'][-2:] == ['2e-05', '0.01']


def test_a_pattern_that_matches_nothing_is_an_error(net):
    with pytest.raises(ValueError, match=r"groups pattern='\^classifier' matches no parameter"):
        resolve(named_parameters(net), {'^classifier': {'lr_mult': 2}})


def test_a_parameter_in_two_groups_is_an_error(net):
    with pytest.raises(ValueError, match=r"'hidden.weight' matches two groups, 'hidden' and "
                                         r"'weight'"):
        resolve(named_parameters(net), {'hidden': {'lr_mult': 2}, 'weight': {'lr_mult': 3}})


@pytest.mark.parametrize('options, message', [
    ({'lr_mult': 0}, 'lr_mult.*=0; expected a positive number'),
    ({'lr_mult': -1}, 'lr_mult.*=-1'),
    ({'wd_mult': -0.1}, 'wd_mult.*=-0.1'),
    ({'momentum': 0.9}, "unknown keys \\['momentum'\\]"),
])
def test_bad_group_options_are_errors(net, options, message):
    with pytest.raises(ValueError, match=message):
        resolve(named_parameters(net), {'output': options})


def test_a_freeze_pattern_that_matches_nothing_is_an_error(net):
    with pytest.raises(ValueError, match="freeze='decoder' matches no parameter"):
        resolve(named_parameters(net), freeze='decoder')


def test_a_pattern_that_is_not_a_regular_expression_is_an_error(net):
    with pytest.raises(ValueError, match=r"is not a regular expression"):
        resolve(named_parameters(net), {'(output': {'lr_mult': 2}})


@pytest.mark.parametrize('lr', [0.0, -1e-3])
def test_zero_or_negative_lr_is_an_error(net, lr):
    with pytest.raises(ValueError, match=f'lr={lr}; expected a positive learning rate'):
        BERTTrainer(net, lr=lr, quiet=True)
