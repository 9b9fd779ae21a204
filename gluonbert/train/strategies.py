"""Fine-tuning strategies (as documented for wenxin/PaddleNLP): R-Drop, adversarial noise on
the word embeddings (FGM), and averaging the parameters of several fine-tuned models.

``Plain``, ``RDrop`` and ``FGM`` share one interface used by ``train_classifier``:
``backward(net, shards, loss)`` runs the forward and backward passes of one batch and returns
the per-shard losses (one value per example) and outputs.
"""
import mxnet as mx
from mxnet import autograd

from .. import compat


def _forward_backward(net, shards, loss):
    with autograd.record():
        outputs = [net(tuple(features)) for *features, _ in shards]
        losses = [loss(out, shard[-1]) for out, shard in zip(outputs, shards)]
    autograd.backward(losses)
    return losses, outputs


class Plain:
    """Ordinary fine-tuning: one forward and one backward pass."""

    def backward(self, net, shards, loss):
        return _forward_backward(net, shards, loss)


def _log_softmax(x):
    return x.log_softmax(axis=-1)


def symmetric_kl(logits_a, logits_b):
    """(KL(p_a || p_b) + KL(p_b || p_a)) / 2 per example, from logits."""
    log_a, log_b = _log_softmax(logits_a), _log_softmax(logits_b)
    return ((log_a.exp() - log_b.exp()) * (log_a - log_b)).sum(axis=-1) / 2


class RDrop:
    """R-Drop (Liang et al. 2021): the batch is duplicated along the batch axis so that two
    dropout masks see each example; the loss is the mean of both cross-entropies plus
    ``alpha`` times the symmetric KL divergence between the two predictions."""

    def __init__(self, alpha=1.0):
        if alpha < 0:
            raise ValueError(f'alpha={alpha}; expected >= 0')
        self.alpha = alpha

    def backward(self, net, shards, loss):
        losses, outputs = [], []
        with autograd.record():
            for *features, labels in shards:
                n = labels.shape[0]
                doubled = tuple(mx.nd.concat(x, x, dim=0) if not isinstance(x, mx.np.ndarray)
                                else mx.np.concatenate([x, x], axis=0) for x in features)
                out = net(doubled)
                first, second = out[:n], out[n:]
                ce = (loss(first, labels) + loss(second, labels)) / 2
                losses.append(ce + self.alpha * symmetric_kl(first, second))
                outputs.append(first)
        autograd.backward(losses)
        return losses, outputs


class FGM:
    """Adversarial training by noise on the word embeddings (Miyato et al.'s fast gradient
    method): after the normal backward pass, the embedding matrix moves by
    ``epsilon * g / ||g||`` along its gradient, one more forward/backward pass adds the
    adversarial gradient, and the embedding is restored."""

    def __init__(self, embedding, epsilon=1.0):
        if epsilon < 0:
            raise ValueError(f'epsilon={epsilon}; expected >= 0')
        self.embedding, self.epsilon = embedding, epsilon

    def backward(self, net, shards, loss):
        losses, outputs = _forward_backward(net, shards, loss)
        params = [p for p in net.collect_params().values() if p.grad_req != 'null']
        clean = {p.name: [g.copy() for g in p.list_grad()] for p in params}
        originals = [data.copy() for data in self.embedding.list_data()]
        for data, grad in zip(self.embedding.list_data(), self.embedding.list_grad()):
            data += grad * (self.epsilon / (grad.norm() + 1e-12))
        _forward_backward(net, shards, loss)
        for data, original in zip(self.embedding.list_data(), originals):
            original.copyto(data)  # exact restore: (w + r) - r need not equal w in floats
        for p in params:
            for grad, saved in zip(p.list_grad(), clean[p.name]):
                grad += saved
        return losses, outputs


def average_parameters(models, into):
    """Set ``into``'s parameters to the mean of ``models``' (same architecture): fine-tuned
    model averaging. Returns ``into``."""
    if not models:
        raise ValueError('models is empty; expected at least one fine-tuned model')
    tables = [compat.structural_parameters(m) for m in models]
    target = compat.structural_parameters(into)
    for name, param in target.items():
        if any(name not in t for t in tables):
            raise ValueError(f'parameter {name!r} is missing from one of the models; expected '
                             f'models of the same architecture')
        mean = sum(t[name].data().copyto(mx.cpu()) for t in tables) / len(tables)
        param.set_data(mean)
    return into
