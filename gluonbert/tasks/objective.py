"""The training objective of a task head: its own per-example loss, summed over a shard."""


class HeadObjective:
    """The engine's Objective for any ``gluonbert.model.heads`` block: a shard is
    ``(tokens, segments, valid_lens, labels)``; the loss is ``net.loss(outputs, labels)``
    summed, the statistics the loss sum and the example count."""
    stat_names = ('loss', 'count')

    def __init__(self, net):
        self.net = net

    def totals(self, batch):
        return {}

    def __call__(self, shard, totals):
        tokens, segments, valid_lens, labels = shard
        losses = self.net.loss(self.net((tokens, segments, valid_lens)), labels)
        return losses, (losses.sum(), losses.ones_like().sum())

    def summarize(self, sums):
        return {'loss': sums['loss'] / max(sums['count'], 1.0)}
