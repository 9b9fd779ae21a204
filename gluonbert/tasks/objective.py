"""The training objective of a task head: its own per-example loss, summed over a shard."""
from ..train.engine import Objective


class HeadObjective(Objective):
    """The engine's Objective for any ``gluonbert.model.heads`` block: a shard is
    ``(tokens, segments, valid_lens, labels)``; the loss is ``net.loss(outputs, labels)``,
    one value per example. Logged: ``loss``, the mean per example."""
    stat_names = ('loss', 'count')

    def __init__(self, net):
        self.net = net

    def __call__(self, shard, totals):
        *features, labels = shard
        losses = self.net.loss(self.net(tuple(features)), labels)
        return losses, (losses.sum(), labels.shape[0])

    def summarize(self, sums):
        return {'loss': sums['loss'] / max(sums['count'], 1.0)}
