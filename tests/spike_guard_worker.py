"""A worker of test_distributed_launch.py's spike-guard test: trains the tiny BERT of
test_parallel_step.py with a ``BERTTrainer`` whose spike guard is on, on a ``dist_sync``
KVStore, with a loss spike planted in rank 0's slice of one step only (its loss times 50),
and writes its step outcomes and parameters, whatever its rank.

``python spike_guard_worker.py OUT_DIR STEPS SPIKE_STEP``: writes ``OUT_DIR/rank-R.nd`` and
``OUT_DIR/rank-R.json`` (the outcome of every step).
"""
import json
import os
import sys

import mxnet as mx

from gluonbert.data.synthetic import synthetic_pretraining_batch
from gluonbert.distributed import create_kvstore
from gluonbert.train.engine import Objective
from gluonbert.train.trainer import BERTTrainer
from test_parallel_step import MAX_LEN, VOCAB_SIZE, pretraining_engine, tiny_bert


class PlantedSpike(Objective):
    """The pretraining loss, times 50 on rank ``rank``'s slice of step ``spike_step``."""

    def __init__(self, loss, rank, spike_step):
        self.loss, self.rank, self.spike_step = loss, rank, spike_step
        self.stat_names = loss.stat_names
        self.steps = -1

    def totals(self, batch):
        self.steps += 1  # once per step
        return self.loss.totals(batch)

    def __call__(self, shard, totals):
        loss, stats = self.loss(shard, totals)
        return (loss * 50 if self.steps == self.spike_step and self.rank == 0 else loss), stats

    def summarize(self, sums):
        return self.loss.summarize(sums)


def main(out_dir, steps, spike_step):
    contexts = [mx.cpu()]
    net = tiny_bert(contexts)
    trainer = BERTTrainer(net, 'sgd', lr=0.1, wd=0.0, spike_factor=3.0, spike_window=5,
                          kvstore=create_kvstore('dist_sync', connect_timeout=60), quiet=True)
    engine = pretraining_engine(net, contexts, trainer)
    engine.objective = PlantedSpike(engine.objective, engine.rank, spike_step)
    outcomes = [engine.step(synthetic_pretraining_batch(step, 6, vocab_size=VOCAB_SIZE,
                                                        max_len=MAX_LEN)).action
                for step in range(steps)]
    with open(os.path.join(out_dir, f'rank-{engine.rank}.json'), 'w', encoding='utf-8') as f:
        json.dump(outcomes, f)
    mx.nd.save(os.path.join(out_dir, f'rank-{engine.rank}.nd'),
               {name: param.data() for name, param in net._collect_params_with_prefix().items()})
    print(f'rank {engine.rank} of {engine.num_workers} done', flush=True)


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
