"""d2l chapter "Bidirectional Encoder Representations from Transformers (BERT)", on gluonbert.

The book's code in the book's order: the input representation, the encoder, the two
pretraining tasks and their losses, printing the same shapes.

    python chapters/bert.py
"""
import gluonbert  # noqa: F401  (first: thread settings before MXNet)
from mxnet import gluon, np, npx

from _setup import parse_args
from gluonbert import BERTEncoder, MaskLM, NextSentencePred, get_tokens_and_segments

npx.set_np()
args = parse_args(__doc__.splitlines()[0], num_hiddens=768)

# Input representation
print(get_tokens_and_segments(['a', 'crane', 'is', 'flying'], ['he', 'left']))

# The encoder
vocab_size, num_hiddens, ffn_num_hiddens, num_heads = 10000, args.num_hiddens, 1024, 4
num_blks, dropout = 2, 0.2
encoder = BERTEncoder(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout)
encoder.initialize()

tokens = np.random.randint(0, vocab_size, (2, 8))
segments = np.array([[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]])
encoded_X = encoder(tokens, segments, None)
print('encoded_X.shape:', encoded_X.shape)

# Masked language modeling
mlm = MaskLM(vocab_size, num_hiddens)
mlm.initialize()
mlm_positions = np.array([[1, 5, 2], [6, 1, 5]])
mlm_Y_hat = mlm(encoded_X, mlm_positions)
print('mlm_Y_hat.shape:', mlm_Y_hat.shape)

mlm_Y = np.array([[7, 8, 9], [10, 20, 30]])
loss = gluon.loss.SoftmaxCrossEntropyLoss()
mlm_l = loss(mlm_Y_hat.reshape((-1, vocab_size)), mlm_Y.reshape(-1))
print('mlm_l.shape:', mlm_l.shape)

# Next sentence prediction
nsp = NextSentencePred()
nsp.initialize()
nsp_Y_hat = nsp(encoded_X)
print('nsp_Y_hat.shape:', nsp_Y_hat.shape)

nsp_y = np.array([0, 1])
nsp_l = loss(nsp_Y_hat, nsp_y)
print('nsp_l.shape:', nsp_l.shape)
