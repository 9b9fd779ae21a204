"""A worker of test_distributed_launch.py: pretrains the tiny BERT of test_parallel_step.py
with the training engine on a ``dist`` KVStore and writes its parameters, whatever its rank, so that
the test can compare the workers with each other and with one process.

``python distributed_worker.py OUT_DIR BATCH_SIZES CONTEXTS KVSTORE [DATA]``: one step per
global batch size (``7,5,1,6``), on this worker's contexts (``cpu:0,cpu:1``), with a ``dist``
KVStore; writes ``OUT_DIR/rank-R.nd``. ``DATA``: ``global`` (every worker steps on the global
batch, which the engine slices) or ``shares`` (each worker steps on its own share only, as
when it reads its own shards).
"""
import os
import sys
import warnings

import mxnet as mx
from mxnet import gluon

from gluonbert.data.synthetic import synthetic_pretraining_batch
from gluonbert.devices import parse_devices
from gluonbert.distributed import create_kvstore
from gluonbert.distributed.kvstore import resolve_update_on_kvstore
from gluonbert.train.engine import IdleDevicesWarning
from gluonbert.train.sharding import shard_sizes
from test_parallel_step import MAX_LEN, SGD, VOCAB_SIZE, pretraining_engine, tiny_bert


def main(out_dir, batch_sizes, contexts, kvstore, data='global'):
    net = tiny_bert(contexts)
    trainer = gluon.Trainer(net.collect_params(), *SGD,
                            kvstore=create_kvstore(kvstore, connect_timeout=60),
                            update_on_kvstore=resolve_update_on_kvstore(kvstore))
    engine = pretraining_engine(net, contexts, trainer)
    warnings.simplefilter('ignore', IdleDevicesWarning)
    for step, size in enumerate(batch_sizes):
        batch = synthetic_pretraining_batch(step, size, vocab_size=VOCAB_SIZE, max_len=MAX_LEN)
        if data == 'shares':
            shares = shard_sizes(size, engine.num_workers, allow_idle=True)
            begin = sum(shares[:engine.rank])
            engine.step([a[begin:begin + shares[engine.rank]] for a in batch],
                        worker_share=True)
        else:
            engine.step(batch)
    mx.nd.save(os.path.join(out_dir, f'rank-{engine.rank}.nd'),
               {name: param.data(contexts[-1])
                for name, param in net._collect_params_with_prefix().items()})
    print(f'rank {engine.rank} of {engine.num_workers} done', flush=True)


if __name__ == '__main__':
    main(sys.argv[1], [int(size) for size in sys.argv[2].split(',')],
         parse_devices(sys.argv[3]), *sys.argv[4:])
