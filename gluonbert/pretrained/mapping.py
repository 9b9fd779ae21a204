"""Which tensor of a published BERT checkpoint is which gluonbert parameter.

gluonbert keeps d2l's parameter names (``encoder.blks.0.attention.W_q.weight``); HF BERT and
GluonNLP 0.10 name the same tensors their own way. Every layer of all three stores weights as
(out_features, in_features), so tensors map one to one, as they are; the one exception is the
position embedding, (max_len, num_hiddens) in both formats and (1, max_len, num_hiddens) in
gluonbert (d2l's layout).
"""

POSITION_EMBEDDING = 'encoder.pos_embedding'

# Within block i: gluonbert's name -> HF's name, under 'encoder.blks.{i}.' / 'encoder.layer.{i}.'
_HF_BLOCK = {
    'attention.W_q': 'attention.self.query',
    'attention.W_k': 'attention.self.key',
    'attention.W_v': 'attention.self.value',
    'attention.W_o': 'attention.output.dense',
    'addnorm1.ln': 'attention.output.LayerNorm',
    'ffn.dense1': 'intermediate.dense',
    'ffn.dense2': 'output.dense',
    'addnorm2.ln': 'output.LayerNorm',
}

_HF_MODEL = {
    'encoder.token_embedding.weight': 'embeddings.word_embeddings.weight',
    'encoder.segment_embedding.weight': 'embeddings.token_type_embeddings.weight',
    POSITION_EMBEDDING: 'embeddings.position_embeddings.weight',
    'encoder.embedding_ln': 'embeddings.LayerNorm',
    'hidden': 'pooler.dense',
}

_HF_HEADS = {
    'mlm.mlp.0': 'cls.predictions.transform.dense',
    'mlm.mlp.1': 'cls.predictions.transform.LayerNorm',
    'mlm.mlp.2.weight': 'cls.predictions.decoder.weight',
    'mlm.mlp.2.bias': 'cls.predictions.bias',
    'nsp.output': 'cls.seq_relationship',
}

_GLUONNLP_BLOCK = {
    'attention.W_q': 'attention_cell.proj_query',
    'attention.W_k': 'attention_cell.proj_key',
    'attention.W_v': 'attention_cell.proj_value',
    'attention.W_o': 'proj',
    'addnorm1.ln': 'layer_norm',
    'ffn.dense1': 'ffn.ffn_1',
    'ffn.dense2': 'ffn.ffn_2',
    'addnorm2.ln': 'ffn.layer_norm',
}

_GLUONNLP_MODEL = {
    'encoder.token_embedding.weight': 'word_embed.0.weight',
    'encoder.segment_embedding.weight': 'token_type_embed.0.weight',
    POSITION_EMBEDDING: 'encoder.position_weight',
    'encoder.embedding_ln': 'encoder.layer_norm',
    'hidden': 'pooler',
    'mlm.mlp.0': 'decoder.0',
    'mlm.mlp.1': 'decoder.2',
    'mlm.mlp.2.weight': 'decoder.3.weight',
    'mlm.mlp.2.bias': 'decoder.3.bias',
    'nsp.output': 'classifier',
}

# gluonbert's parameter suffixes -> HF's (LayerNorm's gamma and beta are HF's weight and bias)
_HF_SUFFIXES = {'weight': 'weight', 'bias': 'bias', 'gamma': 'weight', 'beta': 'bias'}


def _expand(prefix_map, suffixes, name):
    """Look up ``name`` in ``prefix_map``, whose keys are full names or layer prefixes."""
    if name in prefix_map:
        return prefix_map[name]
    layer, _, suffix = name.rpartition('.')
    if layer in prefix_map:
        return f'{prefix_map[layer]}.{suffixes.get(suffix, suffix)}'
    return None


def _block_name(name, block_map, block_prefix, suffixes):
    # 'encoder.blks.3.ffn.dense1.weight' -> block 3, 'ffn.dense1.weight'
    _, _, index, rest = name.split('.', 3)
    mapped = _expand(block_map, suffixes, rest)
    return None if mapped is None else f'{block_prefix}.{index}.{mapped}'


def hf_name(name):
    """HF BERT's name (without the ``bert.`` prefix of the encoder part) of a gluonbert
    parameter name, or None if HF BERT has no such tensor."""
    if name.startswith('encoder.blks.'):
        return _block_name(name, _HF_BLOCK, 'encoder.layer', _HF_SUFFIXES)
    return _expand(_HF_MODEL, _HF_SUFFIXES, name) or _expand(_HF_HEADS, _HF_SUFFIXES, name)


def is_hf_head(name):
    """Whether HF stores gluonbert parameter ``name`` under ``cls.`` (the pretraining heads),
    outside the ``bert.`` encoder."""
    return name.startswith(('mlm.', 'nsp.'))


def is_optional(name):
    """Whether a checkpoint may lack gluonbert parameter ``name``: the pooler and the
    pretraining heads (an HF ``BertModel`` save, GluonNLP's ``use_decoder=False``, ...)."""
    return name.startswith(('hidden.', 'mlm.', 'nsp.'))


def gluonnlp_name(name):
    """GluonNLP 0.10's ``BERTModel`` name of a gluonbert parameter name."""
    if name.startswith('encoder.blks.'):
        return _block_name(name, _GLUONNLP_BLOCK, 'encoder.transformer_cells', {})
    return _expand(_GLUONNLP_MODEL, {}, name)


def checkpoint_shape(name, shape):
    """The shape in which HF and GluonNLP store gluonbert parameter ``name`` of ``shape``."""
    return tuple(shape[1:]) if name == POSITION_EMBEDDING else tuple(shape)
