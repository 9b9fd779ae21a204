"""A head's raw outputs on encoded features, batch by batch, in inference mode.

Rows are batched longest first and each batch is cut to its longest row rounded up to
``MULTIPLE`` tokens (training's ``LongestInBatch`` rule, so the hybridized graphs see a
handful of widths): SST-2's sentences, 25 tokens on average, no longer compute on 128
positions. Padding carries no weight in attention, so the outputs are those of the full
width; they come back in the rows' order.
"""
import numpy as np

MULTIPLE = 16


def predict_outputs(net, features, devices, batch_size=64, token_pad=None):
    """The outputs of ``net`` on every row of ``features`` (numpy; a tuple of arrays for heads
    with several outputs), batches split across ``devices``. ``token_pad``: for heads with an
    output per token (axis 1), the value that fills the positions past a batch's cut (the
    head's value for padding); None for heads with an output per row."""
    import mxnet as mx
    from mxnet import autograd
    from ..train.sharding import shard_batch
    if batch_size < 1:
        raise ValueError(f'batch_size={batch_size}; expected at least 1')
    if not len(features):
        raise ValueError('features hold no row to predict')
    tokens, segments, valid_lens = features.inputs
    width = tokens.shape[-1]
    lengths = valid_lens.reshape(len(valid_lens), -1).max(axis=1)
    order = np.argsort(-lengths, kind='stable')
    pieces = []
    with autograd.predict_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            cut = min(width, -(-int(lengths[rows].max()) // MULTIPLE) * MULTIPLE)
            batch = [mx.nd.array(a[rows][..., :cut] if a is not valid_lens else a[rows],
                                 dtype=dtype)
                     for a, dtype in zip(features.inputs, ('int32', 'int32', 'float32'))]
            for shard in shard_batch(batch, list(devices), allow_idle=True):
                outputs = net(tuple(shard))
                outputs = outputs if isinstance(outputs, (list, tuple)) else (outputs,)
                # float32 whatever the head computed in (bfloat16 under AMP); copied to the
                # host after the loop, so that batches queue up behind each other
                pieces.append([out.astype('float32', copy=False) for out in outputs])
    arrays = tuple(_in_order(column, order, width, token_pad) for column in zip(*pieces))
    return arrays if len(arrays) > 1 else arrays[0]


def _in_order(outputs, order, width, token_pad):
    """One output's batches (NDArrays, rows in ``order``) as one numpy array in the rows'
    order; with ``token_pad``, each padded back to ``width`` tokens on axis 1."""
    outputs = [out.asnumpy() for out in outputs]
    if token_pad is not None:
        outputs = [np.concatenate([out, np.full((out.shape[0], width - out.shape[1])
                                                + out.shape[2:], token_pad, out.dtype)], axis=1)
                   for out in outputs]
    result = np.empty((len(order),) + outputs[0].shape[1:], outputs[0].dtype)
    result[order] = np.concatenate(outputs)
    return result
