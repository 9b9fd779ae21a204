"""A head's raw outputs on encoded features, batch by batch, in inference mode."""
import numpy as np


def predict_outputs(net, features, devices, batch_size=64):
    """The outputs of ``net`` on every row of ``features`` (numpy; a tuple of arrays for heads
    with several outputs), batches split across ``devices``."""
    import mxnet as mx
    from mxnet import autograd
    from ..train.sharding import shard_batch
    if batch_size < 1:
        raise ValueError(f'batch_size={batch_size}; expected at least 1')
    pieces = []
    with autograd.predict_mode():
        for start in range(0, len(features), batch_size):
            batch = [mx.nd.array(a[start:start + batch_size], dtype=dtype) for a, dtype in
                     zip(features.inputs, ('int32', 'int32', 'float32'))]
            for shard in shard_batch(batch, list(devices), allow_idle=True):
                outputs = net(tuple(shard))
                outputs = outputs if isinstance(outputs, (list, tuple)) else (outputs,)
                # float32 whatever the head computed in (bfloat16 under AMP)
                pieces.append([out.astype('float32', copy=False).asnumpy() for out in outputs])
    if not pieces:
        raise ValueError('features hold no row to predict')
    arrays = tuple(np.concatenate(column) for column in zip(*pieces))
    return arrays if len(arrays) > 1 else arrays[0]
