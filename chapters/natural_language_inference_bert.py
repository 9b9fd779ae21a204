"""d2l chapter "Natural Language Inference: Fine-Tuning BERT", on gluonbert.

The book downloads d2l's pretrained ``bert.small``; here the model comes from
``chapters/bert_pretraining.py`` (a gluonbert-pretrained BERT in the same folder layout),
which this script runs first when the folder is missing. SNLI is read from the files found
locally: the original ``snli_1.0_{train,test}.txt`` with d2l's ``read_snli``, or the
InferSent-format dev/test files (train on dev, test on test), or the embedded slice.

    python chapters/natural_language_inference_bert.py [--num-epochs 5] [--devices ...]
"""
import os
import subprocess
import sys

import gluonbert
from mxnet import gluon, npx

from _setup import devices_from, parse_args
from gluonbert.data.nli import SNLIBERTDataset, load_snli
from gluonbert.train.finetune import train_classifier

npx.set_np()
args = parse_args(__doc__.splitlines()[0], pretrained='runs/chapters/bert.small',
                  batch_size=512, max_len=128, num_epochs=5, lr=1e-4, limit=0,
                  pretrain_steps=50)

if not os.path.isfile(os.path.join(args.pretrained, 'pretrained.params')):
    print(f'{args.pretrained} not found: pretraining it with chapters/bert_pretraining.py')
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__),
                                                 'bert_pretraining.py'),
                    '--steps', str(args.pretrain_steps), '--out', args.pretrained]
                   + (['--devices', args.devices] if args.devices else []), check=True)

devices = devices_from(args.devices)
bert, vocab = gluonbert.load_pretrained_model(args.pretrained, dropout=0.1, devices=devices)

batch_size, max_len = args.batch_size, args.max_len
train_data, test_data = load_snli(fallback='embedded')
if args.limit:
    train_data, test_data = (tuple(c[:args.limit] for c in d) for d in (train_data, test_data))
train_set = SNLIBERTDataset(train_data, max_len, vocab)
test_set = SNLIBERTDataset(test_data, max_len, vocab)
train_iter = gluon.data.DataLoader(train_set, batch_size, shuffle=True)
test_iter = gluon.data.DataLoader(test_set, batch_size)

net = gluonbert.BERTClassifier(bert)
net.output.initialize(ctx=devices)

lr, num_epochs = args.lr, args.num_epochs
trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': lr})
loss = gluon.loss.SoftmaxCrossEntropyLoss()
train_classifier(net, train_iter, test_iter, loss, trainer, num_epochs, devices)
