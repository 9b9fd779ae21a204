"""HF transformers' side of the real-checkpoint benchmarks: fine-tune an HF BERT folder on
features that gluonbert encoded, in ``bench/.venv-torch`` (torch, transformers, numpy; no MXNet).

The parent (``real_checkpoint.py``) reads and encodes the data with gluonbert's task code (the
same splits and token ids: ``tests/test_published_checkpoints.py`` shows HF's tokenizer gives
the same ids) and scores the outputs with gluonbert's metrics, so only the model and the
training framework differ. The recipe is gluonbert finetune's: AdamW (epsilon 1e-6, weight
decay off for biases and LayerNorm), linear warm-up then linear decay, batches shuffled per
epoch and cut to their longest sequence rounded up to 16, the heads' losses as gluonbert
computes them (``gluonbert.model.heads``). After each epoch the dev and test outputs are saved
in the heads' layout, padded back to the split's width, for the parent to pick the best epoch by dev.

    bench/.venv-torch/bin/python hf_finetune_worker.py SPEC.json   (writes SPEC's out folder)
"""
import json
import os
import sys
import time

import numpy as np
import torch
import transformers

HEADS = {'classification': transformers.BertForSequenceClassification,
         'regression': transformers.BertForSequenceClassification,
         'token-classification': transformers.BertForTokenClassification,
         'question-answering': transformers.BertForQuestionAnswering,
         'multiple-choice': transformers.BertForMultipleChoice}
MULTIPLE = 16  # batches are cut to their longest sequence, rounded up to this


def model_for(spec):
    options = {'num_labels': spec['num_labels']} if spec['num_labels'] else {}
    if spec['kind'] == 'regression':
        options['problem_type'] = 'regression'
    return HEADS[spec['kind']].from_pretrained(spec['pretrained'], **options)


def cut(arrays, valid_lens, multiple=MULTIPLE):
    """Torch tensors of one batch cut to its longest sequence (rounded up to ``multiple``)."""
    width = min(arrays[0].shape[-1], -(-int(valid_lens.max()) // multiple) * multiple)
    return [torch.from_numpy(np.ascontiguousarray(a[..., :width])) for a in arrays]


def forward(model, kind, tokens, segments, valid_lens):
    """The head's outputs in gluonbert's layout (QA: start and end logits, masked padding)."""
    positions = torch.arange(tokens.shape[-1])
    mask = (positions < torch.from_numpy(valid_lens)[..., None]).long()
    out = model(input_ids=tokens.long(), token_type_ids=segments.long(), attention_mask=mask)
    if kind == 'question-answering':
        penalty = (mask - 1) * 1e4
        return out.start_logits + penalty, out.end_logits + penalty
    return out.logits.squeeze(-1) if kind == 'regression' else out.logits


def loss_of(kind, outputs, labels):
    """gluonbert's losses (``model.heads``), averaged over the batch."""
    f = torch.nn.functional
    if kind == 'regression':
        return ((outputs.float() - labels.float()) ** 2).mean()
    if kind in ('classification', 'multiple-choice'):
        return f.cross_entropy(outputs.float(), labels.long())
    if kind == 'token-classification':
        scored = (labels >= 0).float()
        per_token = f.cross_entropy(outputs.float().transpose(1, 2), labels.long().clamp(min=0),
                                    reduction='none') * scored
        return (per_token.sum(1) / (scored.sum(1) + 1e-8)).mean()
    seq_len = outputs[0].shape[1]
    positions = labels.long().clamp(0, seq_len)
    total = 0
    for i, logits in enumerate(outputs):
        inside = (positions[:, i] < seq_len).float()
        total = total + f.cross_entropy(logits.float(), positions[:, i].clamp(max=seq_len - 1),
                                        reduction='none') * inside
    return (total / 2).mean()


def optimizer_for(model, spec):
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if name.endswith('bias') or 'LayerNorm' in name else decay).append(param)
    return torch.optim.AdamW([{'params': decay, 'weight_decay': spec['weight_decay']},
                              {'params': no_decay, 'weight_decay': 0.0}],
                             lr=spec['lr'], eps=1e-6)


def predict(model, kind, inputs, batch_size, autocast):
    """Outputs on every row of ``inputs`` (numpy, gluonbert's layout and the inputs' width)."""
    width = inputs[0].shape[-1]
    model.eval()
    pieces = []
    with torch.no_grad(), autocast():
        for start in range(0, len(inputs[0]), batch_size):
            batch = [a[start:start + batch_size] for a in inputs]
            outputs = forward(model, kind, *cut(batch[:2], batch[2]), batch[2])
            outputs = outputs if isinstance(outputs, tuple) else (outputs,)
            arrays = [o.float().numpy() for o in outputs]
            if kind in ('question-answering', 'token-classification'):
                arrays = [_pad_tokens(a, width, -1e4 if kind == 'question-answering' else 0)
                          for a in arrays]
            pieces.append(arrays)
    model.train()
    return [np.concatenate(column) for column in zip(*pieces)]


def _pad_tokens(a, width, value):
    """``a`` (rows, tokens, ...) padded with ``value`` to ``width`` tokens."""
    extra = width - a.shape[1]
    if extra <= 0:
        return a
    shape = (a.shape[0], extra) + a.shape[2:]
    return np.concatenate([a, np.full(shape, value, a.dtype)], axis=1)


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    torch.manual_seed(spec['seed'])
    torch.set_num_threads(spec.get('threads') or os.cpu_count())
    data = np.load(spec['features'])
    train = [data[f'train_{n}'] for n in ('tokens', 'segments', 'valid_lens', 'labels')]
    kind, batch_size = spec['kind'], spec['batch_size']
    model = model_for(spec)
    model.train()
    optimizer = optimizer_for(model, spec)
    steps_per_epoch = -(-len(train[0]) // batch_size)
    updates = spec['epochs'] * steps_per_epoch
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, spec['warmup_steps'],
                                                            updates)
    autocast = ((lambda: torch.autocast('cpu', dtype=torch.bfloat16)) if spec['amp'] == 'bf16'
                else (lambda: torch.autocast('cpu', enabled=False)))
    rng = np.random.RandomState(spec['seed'])
    train_seconds, losses, epochs = 0.0, [], []
    for epoch in range(spec['epochs']):
        start = time.perf_counter()
        order = rng.permutation(len(train[0]))
        for step in range(steps_per_epoch):
            rows = order[step * batch_size:(step + 1) * batch_size]
            tokens, segments, valid_lens, labels = (a[rows] for a in train)
            tokens, segments = cut([tokens, segments], valid_lens)
            if kind == 'token-classification':
                labels = labels[..., :tokens.shape[-1]]
            with autocast():
                outputs = forward(model, kind, tokens, segments, valid_lens)
            loss = loss_of(kind, outputs, torch.from_numpy(np.asarray(labels)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss))
        train_seconds += time.perf_counter() - start
        outputs = {}
        for split in ('dev', 'test'):
            if f'{split}_tokens' in data:
                inputs = [data[f'{split}_{n}'] for n in ('tokens', 'segments', 'valid_lens')]
                for i, array in enumerate(predict(model, kind, inputs, spec['eval_batch_size'],
                                                  autocast)):
                    outputs[f'{split}_{i}'] = array
        path = os.path.join(spec['out'], f'epoch-{epoch}.npz')
        np.savez(path, **outputs)
        epochs.append(path)
        print(f'epoch {epoch + 1}: loss {np.mean(losses[-steps_per_epoch:]):.4f}', flush=True)
    with open(os.path.join(spec['out'], 'result.json'), 'w') as f:
        json.dump({'epochs': epochs, 'train_seconds': train_seconds,
                   'examples_per_sec': spec['epochs'] * len(train[0]) / train_seconds,
                   'losses': losses, 'torch': torch.__version__,
                   'transformers': transformers.__version__}, f)


if __name__ == '__main__':
    main(sys.argv[1])
