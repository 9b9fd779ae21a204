"""A worker of test_distributed_launch.py: pretrains the tiny BERT of test_parallel_step.py
with ``DataParallel`` on ``dist_sync`` and writes its parameters, whatever its rank, so that
the test can compare the workers with each other and with one process.

``python distributed_worker.py OUT_DIR BATCH_SIZES CONTEXTS KVSTORE``: one step per global
batch size (``7,5,1,6``), on this worker's contexts (``cpu:0,cpu:1``), with a ``dist``
KVStore; writes ``OUT_DIR/rank-R.nd``.
"""
import os
import sys
import warnings

import mxnet as mx
from mxnet import gluon

from gluonbert.devices import parse_devices
from gluonbert.distributed import (DataParallel, IdleDevicesWarning, PretrainingLoss,
                                   synthetic_pretraining_batch)
from gluonbert.train.pretrain import PretrainingObjective
from test_parallel_step import MAX_LEN, SGD, VOCAB_SIZE, tiny_bert


def main(out_dir, batch_sizes, contexts, kvstore):
    net = tiny_bert(contexts)
    objective = PretrainingObjective(net, gluon.loss.SoftmaxCELoss(), VOCAB_SIZE)
    objective.hybridize(static_alloc=True, static_shape=True)
    parallel = DataParallel(net, contexts, kvstore, connect_timeout=60)
    trainer = parallel.trainer(*SGD)
    warnings.simplefilter('ignore', IdleDevicesWarning)
    for step, size in enumerate(batch_sizes):
        batch = synthetic_pretraining_batch(step, size, vocab_size=VOCAB_SIZE, max_len=MAX_LEN)
        parallel.step(trainer, batch, PretrainingLoss(objective))
    mx.nd.save(os.path.join(out_dir, f'rank-{parallel.rank}.nd'),
               {name: param.data(contexts[-1])
                for name, param in net._collect_params_with_prefix().items()})
    print(f'rank {parallel.rank} of {parallel.num_workers} done', flush=True)


if __name__ == '__main__':
    main(sys.argv[1], [int(size) for size in sys.argv[2].split(',')],
         parse_devices(sys.argv[3]), sys.argv[4])
