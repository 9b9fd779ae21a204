"""d2l chapter "Pretraining BERT", on gluonbert.

Pretrains the chapter's small BERT on WikiText-2 with ``train_bert`` (on every GPU, or the
devices given), then represents text with it. The model is built with ``max_len=512`` as
d2l's ``bert.small`` is, and saved in that layout (``vocab.json``, ``pretrained.params``) so
that ``chapters/natural_language_inference_bert.py`` can fine-tune it.

    python chapters/bert_pretraining.py [--steps 50] [--devices cpu:0,cpu:1]
"""
import gluonbert
from mxnet import gluon, init, np, npx

from _setup import devices_from, parse_args

npx.set_np()
args = parse_args(__doc__.splitlines()[0], batch_size=512, max_len=64, steps=50,
                  num_hiddens=128, out='runs/chapters/bert.small')

batch_size, max_len = args.batch_size, args.max_len
train_iter, vocab = gluonbert.load_data_wiki(batch_size, max_len, fallback='embedded')

net = gluonbert.BERTModel(len(vocab), num_hiddens=args.num_hiddens,
                          ffn_num_hiddens=2 * args.num_hiddens, num_heads=2, num_blks=2,
                          dropout=0.2, max_len=512)
devices = devices_from(args.devices)
net.initialize(init.Xavier(), ctx=devices)
loss = gluon.loss.SoftmaxCELoss()

# The book's train_bert: Adam at lr 0.01. Measured here, that lr collapses the '<cls>'
# encoding of this small model within 150 steps (the same for every input), so fine-tuning from
# it stays at chance; `gluonbert pretrain` defaults to 1e-3 (pass a gluon.Trainer to change it)
gluonbert.train_bert(train_iter, net, loss, len(vocab), devices, args.steps)


def get_bert_encoding(net, tokens_a, tokens_b=None):
    tokens, segments = gluonbert.get_tokens_and_segments(tokens_a, tokens_b)
    token_ids = np.expand_dims(np.array(vocab[tokens], ctx=devices[0]), axis=0)
    segments = np.expand_dims(np.array(segments, ctx=devices[0]), axis=0)
    valid_len = np.expand_dims(np.array(len(tokens), ctx=devices[0]), axis=0)
    encoded_X, _, _ = net(token_ids, segments, valid_len)
    return encoded_X


tokens_a = ['a', 'crane', 'is', 'flying']
encoded_text = get_bert_encoding(net, tokens_a)
# Tokens: '<cls>', 'a', 'crane', 'is', 'flying', '<sep>'
encoded_text_cls = encoded_text[:, 0, :]
encoded_text_crane = encoded_text[:, 2, :]
print(encoded_text.shape, encoded_text_cls.shape, encoded_text_crane[0][:3])

tokens_a, tokens_b = ['a', 'crane', 'driver', 'came'], ['he', 'just', 'left']
encoded_pair = get_bert_encoding(net, tokens_a, tokens_b)
# Tokens: '<cls>', 'a', 'crane', 'driver', 'came', '<sep>', 'he', 'just', 'left', '<sep>'
encoded_pair_cls = encoded_pair[:, 0, :]
encoded_pair_crane = encoded_pair[:, 2, :]
print(encoded_pair.shape, encoded_pair_cls.shape, encoded_pair_crane[0][:3])

gluonbert.save_pretrained(net, vocab, args.out, config=net.config)
print(f'saved the pretrained model to {args.out}/ (vocab.json, pretrained.params)')
