"""Prediction in batches of rows of about one length, outputs in the rows' order.

``length_batches`` is the plan that gluonbert's own prediction (``predict_outputs``, MXNet),
``export/predict.py`` (onnxruntime, no MXNet) and the inference benchmarks share: rows are
batched longest first and each batch is cut to its longest row: SST-2's sentences, 25 tokens
on average, no longer compute on 128 positions, nor on the longest of a batch in file order.
The cut is exact, not rounded up as training's ``LongestInBatch`` rounds: a new width costs an
inference graph little, and rounding up to 16 cost 1.2-1.4x in speed (MiniLM fine-tuned on
SST-2, batches of 128, on SST-2's dev and training sentences: MXNet in float32 and bfloat16,
onnxruntime in float32 and int8). The first pass, where every batch's width is new, ran 0-8%
slower than the later ones, rounded or not.
Padding carries no weight in attention, so the outputs are those of the full width;
``in_row_order`` puts them back in the rows' order, and ``outputs_in_row_order`` runs a model
over a plan and does both. Numpy only: MXNet is imported inside ``predict_outputs``.
"""
import numpy as np


def length_batches(inputs, batch_size):
    """``(rows, batch)`` pairs covering every row of ``inputs`` (``tokens``, ``segments``,
    ``valid_lens``, numpy, sequence on the last axis): ``rows``, at most ``batch_size`` row
    indices, longest first (a row with several sequences counts its longest); ``batch``, those
    rows of ``inputs`` cut to their longest sequence."""
    if batch_size < 1:
        raise ValueError(f'batch_size={batch_size}; expected at least 1')
    tokens, segments, valid_lens = inputs
    lengths = valid_lens.reshape(len(valid_lens), -1).max(axis=1)
    order = np.argsort(-lengths, kind='stable')
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        cut = int(lengths[rows].max())
        yield rows, (tokens[rows][..., :cut], segments[rows][..., :cut], valid_lens[rows])


def in_row_order(pieces, rows, width, token_pad=None):
    """One output's batches (numpy, the batches of ``rows``) as one array in the rows'
    order. ``token_pad``: for outputs per token (axis 1), the value that fills the positions
    past a batch's cut up to ``width`` (the head's value for padding); None for outputs per
    row."""
    if token_pad is not None:
        pieces = [np.concatenate([piece, np.full((len(piece), width - piece.shape[1])
                                                 + piece.shape[2:], token_pad, piece.dtype)],
                                 axis=1)
                  for piece in pieces]
    order = np.concatenate(rows)
    result = np.empty((len(order),) + pieces[0].shape[1:], pieces[0].dtype)
    result[order] = np.concatenate(pieces)
    return result


def outputs_in_row_order(batches, width, run, token_pad=None, to_numpy=np.asarray):
    """The outputs of ``run(batch)`` over ``batches`` (``(rows, batch)`` pairs, such as
    ``length_batches``'), in the rows' order: one numpy array, or a tuple for several outputs.
    ``run`` gives one value per output, which ``to_numpy`` turns into numpy after the last
    batch (so that an asynchronous engine queues the batches up). ``width`` and ``token_pad``:
    see ``in_row_order``."""
    rows, pieces = [], []
    for batch_rows, batch in batches:
        rows.append(batch_rows)
        pieces.append(run(batch))
    arrays = tuple(in_row_order([to_numpy(piece[k]) for piece in pieces], rows, width,
                                token_pad)
                   for k in range(len(pieces[0])))
    return arrays if len(arrays) > 1 else arrays[0]


def predict_outputs(net, features, devices, batch_size=64, token_pad=None):
    """The outputs of ``net`` on every row of ``features`` (numpy; a tuple of arrays for heads
    with several outputs), batches split across ``devices``. ``token_pad``: for heads with an
    output per token (axis 1), the value that fills the positions past a batch's cut (the
    head's value for padding); None for heads with an output per row."""
    import mxnet as mx
    from mxnet import autograd
    from ..train.sharding import shard_batch
    if not len(features):
        raise ValueError('features hold no row to predict')

    def run(batch):
        """Per output, its shards (one per device), float32 whatever the head computed in
        (bfloat16 under AMP)."""
        batch = [mx.nd.array(a, dtype=dtype)
                 for a, dtype in zip(batch, ('int32', 'int32', 'float32'))]
        shards = []
        for shard in shard_batch(batch, list(devices), allow_idle=True):
            outputs = net(tuple(shard))
            outputs = outputs if isinstance(outputs, (list, tuple)) else (outputs,)
            shards.append([out.astype('float32', copy=False) for out in outputs])
        return list(zip(*shards))

    def to_numpy(shards):
        return np.concatenate([shard.asnumpy() for shard in shards])
    with autograd.predict_mode():
        return outputs_in_row_order(length_batches(features.inputs, batch_size),
                                    features.tokens.shape[-1], run, token_pad, to_numpy)
