"""Fine-tuning strategies (as documented for wenxin/PaddleNLP): R-Drop, adversarial noise on
the word embeddings (FGM), and averaging the parameters of several fine-tuned models.

R-Drop changes the loss, so it is an engine ``Objective`` wrapping the classification loss;
FGM changes how a batch's gradient is computed (two passes), so it is an engine strategy,
with ``engine.Plain``'s interface: ``backward(compute, shards, trainer)`` runs the forward
and backward passes of one batch (``compute(shard)`` gives the shard's ``(loss, stats)``) and
returns the per-shard results.
"""
import mxnet as mx
from mxnet import autograd

from .engine import Objective, Plain, trainer_parameters
from .finetune import ClassificationLoss


def _log_softmax(x):
    return x.log_softmax(axis=-1)


def symmetric_kl(logits_a, logits_b):
    """(KL(p_a || p_b) + KL(p_b || p_a)) / 2 per example, from logits."""
    log_a, log_b = _log_softmax(logits_a), _log_softmax(logits_b)
    return ((log_a.exp() - log_b.exp()) * (log_a - log_b)).sum(axis=-1) / 2


def _doubled(x):
    if isinstance(x, mx.np.ndarray):
        return mx.np.concatenate([x, x], axis=0)
    return mx.nd.concat(x, x, dim=0)


class RDrop(Objective):
    """R-Drop (Liang et al. 2021) on a ``ClassificationLoss``: the batch is duplicated along
    the batch axis so that two dropout masks see each example; the loss is the mean of both
    cross-entropies plus ``alpha`` times the symmetric KL divergence between the two
    predictions. Statistics are those of the first copy."""

    def __init__(self, objective, alpha=1.0):
        if not isinstance(objective, ClassificationLoss):
            raise ValueError(f'RDrop wraps a ClassificationLoss, not '
                             f'{type(objective).__name__}')
        if alpha < 0:
            raise ValueError(f'alpha={alpha}; expected >= 0')
        self.objective, self.alpha = objective, alpha
        self.stat_names = objective.stat_names

    def __call__(self, shard, totals):
        *features, labels = shard
        net, loss = self.objective.net, self.objective.loss
        n = labels.shape[0]
        out = net(tuple(_doubled(x) for x in features))
        first, second = out[:n], out[n:]
        losses = (loss(first, labels) + loss(second, labels)) / 2 \
            + self.alpha * symmetric_kl(first, second)
        return ClassificationLoss.scored(losses, first, labels)

    def summarize(self, sums):
        return self.objective.summarize(sums)


class FGM:
    """Adversarial training by noise on the word embeddings (Miyato et al.'s fast gradient
    method): after the normal backward pass, the embedding matrix moves by
    ``epsilon * g / ||g||`` along its gradient, one more forward/backward pass adds the
    adversarial gradient, and the embedding is restored."""

    def __init__(self, embedding, epsilon=1.0):
        if epsilon < 0:
            raise ValueError(f'epsilon={epsilon}; expected >= 0')
        self.embedding, self.epsilon = embedding, epsilon

    def backward(self, compute, shards, trainer):
        results = Plain().backward(compute, shards, trainer)
        params = [p for p in trainer_parameters(trainer) if p.grad_req == 'write']
        clean = {p.name: [g.copy() for g in p.list_grad()] for p in params}
        originals = [data.copy() for data in self.embedding.list_data()]
        for data, grad in zip(self.embedding.list_data(), self.embedding.list_grad()):
            data += grad * (self.epsilon / (grad.norm() + 1e-12))
        Plain().backward(compute, shards, trainer)
        for data, original in zip(self.embedding.list_data(), originals):
            original.copyto(data)  # exact restore: (w + r) - r need not equal w in floats
        # grad_req='write' kept only the adversarial gradient: add the clean one back
        # ('add', under accumulation, already holds both)
        for p in params:
            for grad, saved in zip(p.list_grad(), clean[p.name]):
                grad += saved
        return results


def average_parameters(models, into):
    """Set ``into``'s parameters to the mean of ``models``' (same architecture): fine-tuned
    model averaging. Returns ``into``."""
    if not models:
        raise ValueError('models is empty; expected at least one fine-tuned model')
    tables = [m._collect_params_with_prefix() for m in models]
    target = into._collect_params_with_prefix()
    for name, param in target.items():
        if any(name not in t for t in tables):
            raise ValueError(f'parameter {name!r} is missing from one of the models; expected '
                             f'models of the same architecture')
        mean = sum(t[name].data().copyto(mx.cpu()) for t in tables) / len(tables)
        param.set_data(mean)
    return into
