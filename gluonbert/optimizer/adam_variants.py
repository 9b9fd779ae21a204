"""One Adam with two switches, registered as three MXNet optimizers.

=================  ======================  ===============  ==============================
registered name    weight decay            bias correction  known as
=================  ======================  ===============  ==============================
``gb_bertadam``    decoupled (``lr*wd*w``)  no               BERT's optimizer, GluonNLP's
                                                            ``BERTAdam``, TF's
                                                            ``AdamWeightDecayOptimizer``
``gb_adamw``       decoupled (``lr*wd*w``)  yes              AdamW (HF ``AdamW``)
``gb_adam``        L2, through the gradient yes              ``mxnet.optimizer.Adam``
=================  ======================  ===============  ==============================

The names carry a ``gb_`` prefix because GluonNLP registers ``bertadam`` and later MXNet
versions register ``adamw``: registering the same name again silently replaces the other
library's optimizer. ``gluonbert.train.BERTTrainer`` accepts the short names.

The update for step ``t`` of a parameter (``g`` is the rescaled gradient)::

    g = clip(rescale_grad * grad [+ wd * w if L2], clip_gradient)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g**2
    c = sqrt(1 - beta2**t) / (1 - beta1**t)  if bias correction else 1
    w = w - lr * (c * m / (sqrt(v) + epsilon) [+ wd * w if decoupled])

The correction multiplies the step, with epsilon added to the uncorrected ``sqrt(v)`` (the
form of MXNet's ``Adam``, TF and HF); decoupled decay uses the weight before the step, as
``BERTAdam`` does. Without correction the first steps are about ``1 / (1 - beta1) = 10`` times
smaller than with it, the difference that matters in few-sample fine-tuning (Zhang et al.
2021, "Revisiting Few-sample BERT Fine-tuning").
"""
import math

import numpy as np
from mxnet import ndarray as nd
from mxnet.optimizer import Optimizer, register

from .. import ops


class AdamVariant(Optimizer):
    """Adam with ``decoupled_weight_decay`` and ``bias_correction`` switches (see the module).

    Takes ``mxnet.optimizer.Optimizer``'s arguments (``learning_rate``, ``wd``,
    ``rescale_grad``, ``clip_gradient``, ``multi_precision``...) plus ``beta1``, ``beta2`` and
    ``epsilon`` (1e-6, BERT's value). Per-parameter ``lr_mult`` and ``wd_mult`` apply as in
    every MXNet optimizer.
    """

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-6, *,
                 decoupled_weight_decay, bias_correction, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        for name, value in (('beta1', beta1), ('beta2', beta2)):
            if not 0 <= value < 1:
                raise ValueError(f'{name}={value}; expected a value in [0, 1)')
        if epsilon <= 0:
            raise ValueError(f'epsilon={epsilon}; expected a positive number')
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.decoupled_weight_decay = decoupled_weight_decay
        self.bias_correction = bias_correction

    def create_state(self, index, weight):
        return (nd.zeros(weight.shape, weight.context, dtype=weight.dtype),   # mean
                nd.zeros(weight.shape, weight.context, dtype=weight.dtype))   # variance

    def step_multiplier(self, t):
        """The factor ``c`` of the step at update ``t`` (1 for the first update without
        correction, ``sqrt(1 - beta2) / (1 - beta1)`` with it)."""
        if not self.bias_correction:
            return 1.0
        return math.sqrt(1. - self.beta2 ** t) / (1. - self.beta1 ** t)

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        multiplier = self.step_multiplier(self._index_update_count[index])
        mean, var = state
        options = dict(beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon,
                       rescale_grad=self.rescale_grad, clip_gradient=self.clip_gradient or -1)
        # Decoupled: w -= lr * (c * m / (sqrt(v) + eps) + wd * w), i.e. the weight scaled by
        # 1 - lr * wd, then Adam's step without decay
        decay = 1 - lr * wd if self.decoupled_weight_decay else 1.
        l2 = 0. if self.decoupled_weight_decay else wd
        if _kernel_applies(weight, grad):
            # Both in one threaded pass (gluonbert.ops)
            nd.gb_adam_update(weight, grad, mean, var, lr=lr * multiplier, wd=l2, decay=decay,
                              out=weight, **options)
            return
        # MXNet 1.9.1's adamw_update makes five single-threaded passes over the tensors (3-5x
        # slower on CPU), adam_update one threaded pass
        if decay != 1:
            weight *= decay
        nd.adam_update(weight, grad, mean, var, lr=lr * multiplier, wd=l2, out=weight,
                       **options)


def _kernel_applies(weight, grad):
    """Whether ``gb_adam_update`` can update ``weight``: dense float32 arrays on a CPU."""
    return (ops.enabled('gb_adam_update') and weight.context.device_type == 'cpu'
            and weight.dtype == np.float32 and grad.dtype == np.float32
            and weight.stype == grad.stype == 'default')


# The class names give the registered names (MXNet registers ``__name__.lower()``)
@register
class GB_BERTAdam(AdamVariant):  # pylint: disable=invalid-name
    """BERT's Adam: decoupled weight decay, no bias correction."""

    def __init__(self, learning_rate=0.001, **kwargs):
        super().__init__(learning_rate, decoupled_weight_decay=True, bias_correction=False,
                         **kwargs)


@register
class GB_AdamW(AdamVariant):  # pylint: disable=invalid-name
    """AdamW: decoupled weight decay, bias correction."""

    def __init__(self, learning_rate=0.001, **kwargs):
        super().__init__(learning_rate, decoupled_weight_decay=True, bias_correction=True,
                         **kwargs)


@register
class GB_Adam(AdamVariant):  # pylint: disable=invalid-name
    """Adam with L2 regularization through the gradient, bias correction."""

    def __init__(self, learning_rate=0.001, **kwargs):
        super().__init__(learning_rate, decoupled_weight_decay=False, bias_correction=True,
                         **kwargs)


# The names BERTTrainer accepts, and the registered optimizer each stands for
OPTIMIZERS = {'bertadam': 'gb_bertadam', 'adamw': 'gb_adamw', 'adam': 'gb_adam'}
