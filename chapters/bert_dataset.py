"""d2l chapter "The Dataset for Pretraining BERT", on gluonbert.

Loads WikiText-2 as the book does (found locally: see docs/data.md; the small
slice shipped with gluonbert when nothing else is found) and prints one batch's shapes and
the vocabulary size.

    python chapters/bert_dataset.py
"""
import gluonbert
from mxnet import npx

from _setup import parse_args

npx.set_np()
args = parse_args(__doc__.splitlines()[0], batch_size=512, max_len=64)

batch_size, max_len = args.batch_size, args.max_len
train_iter, vocab = gluonbert.load_data_wiki(batch_size, max_len, fallback='embedded')

for (tokens_X, segments_X, valid_lens_x, pred_positions_X, mlm_weights_X,
     mlm_Y, nsp_y) in train_iter:
    print(tokens_X.shape, segments_X.shape, valid_lens_x.shape,
          pred_positions_X.shape, mlm_weights_X.shape, mlm_Y.shape,
          nsp_y.shape)
    break

print('len(vocab):', len(vocab))
