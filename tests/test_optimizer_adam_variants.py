"""gb_bertadam / gb_adamw / gb_adam: step by step against NumPy, GluonNLP's BERTAdam and
MXNet's Adam."""
import math

import mxnet as mx
import numpy as np
import pytest
from gluonnlp.optimizer import BERTAdam

from gluonbert.optimizer import OPTIMIZERS, AdamVariant

SWITCHES = {'gb_bertadam': (True, False), 'gb_adamw': (True, True), 'gb_adam': (False, True)}


def reference(w, grads, lr, wd, decoupled, corrected, beta1=0.9, beta2=0.999, eps=1e-6,
              rescale=1.0):
    """Adam in float64 NumPy, written from the formulas."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, grad in enumerate(grads, 1):
        g = grad * rescale + (0 if decoupled else wd * w)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        c = math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) if corrected else 1.0
        w = w - lr * (c * m / (np.sqrt(v) + eps) + (wd * w if decoupled else 0))
    return w


def run(optimizer, w, grads):
    """Apply ``optimizer`` to ``w`` for each gradient of ``grads``, as gluon.Trainer would."""
    updater = mx.optimizer.get_updater(optimizer)
    weight = mx.nd.array(w)
    history = []
    for grad in grads:
        updater(0, mx.nd.array(grad), weight)
        history.append(weight.asnumpy().copy())
    return history


@pytest.fixture
def problem():
    rng = np.random.RandomState(0)
    return rng.randn(5, 4), [rng.randn(5, 4) for _ in range(8)]


@pytest.mark.parametrize('name', sorted(SWITCHES))
def test_every_step_matches_the_numpy_reference(name, problem):
    w, grads = problem
    decoupled, corrected = SWITCHES[name]
    opt = mx.optimizer.create(name, learning_rate=0.01, wd=0.1, rescale_grad=0.5)
    history = run(opt, w, grads)
    for t in range(1, len(grads) + 1):
        expected = reference(w, grads[:t], 0.01, 0.1, decoupled, corrected, rescale=0.5)
        np.testing.assert_allclose(history[t - 1], expected, rtol=1e-5, atol=1e-6)


def test_bertadam_matches_gluonnlp_bertadam_per_tensor_path_to_float32_rounding(problem):
    # Ours decays, then takes adam_update's step: adamw_update's numbers up to rounding
    w, grads = problem
    theirs = BERTAdam(learning_rate=0.01, wd=0.1)
    theirs.aggregate_num = 1  # one adamw_update per tensor
    ours = run(mx.optimizer.create('gb_bertadam', learning_rate=0.01, wd=0.1), w, grads)
    for t, (a, b) in enumerate(zip(ours, run(theirs, w, grads)), 1):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f'step {t}')


def test_bertadam_matches_gluonnlp_bertadam_aggregated_path_to_float32_rounding(problem):
    w, grads = problem
    ours = run(mx.optimizer.create('gb_bertadam', learning_rate=0.01, wd=0.1), w, grads)
    theirs = run(BERTAdam(learning_rate=0.01, wd=0.1), w, grads)  # multi_adamw_update
    for t, (a, b) in enumerate(zip(ours, theirs), 1):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6, err_msg=f'step {t}')


def test_adam_is_mxnet_adam_bit_for_bit(problem):
    w, grads = problem
    ours = run(mx.optimizer.create('gb_adam', learning_rate=0.01, wd=0.1, epsilon=1e-8), w,
               grads)
    theirs = run(mx.optimizer.Adam(learning_rate=0.01, wd=0.1, epsilon=1e-8), w, grads)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_first_step_is_lr_with_bias_correction_and_a_third_of_it_without():
    w, g = np.zeros((3,)), [np.array([0.5, -2.0, 4.0])]
    corrected = run(mx.optimizer.create('gb_adamw', learning_rate=0.01), w, g)[0]
    uncorrected = run(mx.optimizer.create('gb_bertadam', learning_rate=0.01), w, g)[0]
    # m / sqrt(v) = (1 - beta1) / sqrt(1 - beta2) = 0.316 without correction, 1 with it
    np.testing.assert_allclose(corrected, -0.01 * np.sign(g[0]), rtol=1e-4)
    np.testing.assert_allclose(uncorrected, -0.01 * 0.1 / math.sqrt(0.001) * np.sign(g[0]),
                               rtol=1e-4)


def test_decoupled_decay_shrinks_by_lr_times_wd_where_l2_is_normalised_away():
    w, zero = np.ones((4,)), [np.zeros((4,))]
    decoupled = run(mx.optimizer.create('gb_adamw', learning_rate=0.01, wd=0.1), w, zero)[0]
    l2 = run(mx.optimizer.create('gb_adam', learning_rate=0.01, wd=0.1), w, zero)[0]
    np.testing.assert_allclose(decoupled, 1 - 0.01 * 0.1, rtol=1e-6)
    # Through the gradient, Adam divides the decay by its own magnitude: a full lr step
    np.testing.assert_allclose(l2, 1 - 0.01, rtol=1e-4)


def test_lr_mult_and_wd_mult_of_a_parameter_apply():
    param = mx.gluon.Parameter('w', shape=(2,), lr_mult=0.5, wd_mult=0.0)
    param.initialize(mx.init.One())
    opt = mx.optimizer.create('gb_adamw', learning_rate=0.01, wd=0.1, param_dict={0: param})
    after = run(opt, np.ones((2,)), [np.array([1.0, -1.0])])[0]
    np.testing.assert_allclose(after, 1 - 0.005 * np.array([1.0, -1.0]), rtol=1e-4)


def test_registered_names_leave_gluonnlp_and_mxnet_optimizers_in_place():
    registry = mx.optimizer.Optimizer.opt_registry
    assert registry['bertadam'] is BERTAdam
    assert registry['adam'] is mx.optimizer.Adam
    for short, registered in OPTIMIZERS.items():
        opt = mx.optimizer.create(registered)
        assert isinstance(opt, AdamVariant)
        assert (opt.decoupled_weight_decay, opt.bias_correction) == SWITCHES[registered], short


@pytest.mark.parametrize('option', [{'beta1': 1.0}, {'beta2': -0.1}, {'epsilon': 0.0}])
def test_out_of_range_hyperparameters_are_errors(option):
    with pytest.raises(ValueError, match=next(iter(option))):
        mx.optimizer.create('gb_adamw', **option)


@pytest.mark.parametrize('name', sorted(SWITCHES))
def test_without_the_kernel_every_variant_takes_the_same_steps(name, problem):
    # gb_adam_update (gluonbert.ops) where it applies, MXNet's adam_update elsewhere
    from gluonbert import ops
    w, grads = problem
    options = dict(learning_rate=0.01, wd=0.1, rescale_grad=0.5, clip_gradient=0.4)
    with_kernel = run(mx.optimizer.create(name, **options), w, grads)
    with ops.disabled('gb_adam_update'):
        without = run(mx.optimizer.create(name, **options), w, grads)
    for t, (a, b) in enumerate(zip(with_kernel, without), 1):
        np.testing.assert_array_equal(a, b, err_msg=f'step {t}')
