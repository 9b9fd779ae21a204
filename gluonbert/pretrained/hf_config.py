"""HF ``BertConfig`` (``config.json``) <-> gluonbert's ``BERTModel`` options.

HF BERT is gluonbert's ``BERTModel`` with ``activation='gelu'``, ``embedding_layer_norm=True``,
``layer_norm_eps=1e-12`` and ``tie_mlm_decoder=True``. Fields that would change the
architecture into something gluonbert does not compute are refused by name; fields that only
describe training or tooling (``initializer_range``, ``torch_dtype``, ``pooler_*`` of
the Chinese model, ...) are ignored.
"""

# config.json field -> BERTModel argument, for the sizes; a config must give them all
_SIZES = {'vocab_size': 'vocab_size', 'hidden_size': 'num_hiddens',
          'intermediate_size': 'ffn_num_hiddens', 'num_attention_heads': 'num_heads',
          'num_hidden_layers': 'num_blks', 'max_position_embeddings': 'max_len'}

# BertConfig's defaults for the fields a config.json may leave out
_DEFAULTS = {'hidden_act': 'gelu', 'layer_norm_eps': 1e-12, 'type_vocab_size': 2,
             'position_embedding_type': 'absolute', 'hidden_dropout_prob': 0.1,
             'attention_probs_dropout_prob': 0.1, 'tie_word_embeddings': True,
             'is_decoder': False, 'add_cross_attention': False}

# HF's names of the activations gluonbert computes: 'gelu' is HF's exact, erf-based GELU
_ACTIVATIONS = {'gelu': 'gelu', 'relu': 'relu'}

# Fields that must hold exactly this value: anything else is another architecture
_REQUIRED_VALUES = {'type_vocab_size': 2,
                    'position_embedding_type': 'absolute', 'is_decoder': False,
                    'add_cross_attention': False}


# What gluonbert reads, for the error on another architecture
READS = ('BERT checkpoints (model_type "bert": BertModel, BertForPreTraining, BertForMaskedLM, '
         'BertForSequenceClassification and the other BertFor... heads, and '
         'sentence-transformers folders of them)')


def _check_architecture(config):
    """ValueError naming the ``model_type`` (or, without one, the ``architectures``) of a
    checkpoint that is not BERT: RoBERTa, DistilBERT, DeBERTa, ... have other layers."""
    model_type = config.get('model_type')
    architectures = config.get('architectures') or []
    if model_type is None:
        other = [name for name in architectures if not str(name).startswith('Bert')]
        if other:
            raise ValueError(f'config.json: architectures {other} without a model_type is not '
                             f'BERT; gluonbert reads {READS}')
    elif model_type != 'bert':
        raise ValueError(f'config.json: model_type {model_type!r} is another architecture; '
                         f'gluonbert reads {READS}')


def _unsupported(field, value, expected):
    return ValueError(f'config.json: {field}={value!r} is not supported by gluonbert\'s BERT; '
                      f'expected {expected}')


def options_from_hf_config(config, *, dropout=None):
    """``BERTModel`` keyword arguments for an HF BERT ``config`` (the parsed config.json).

    ``dropout`` overrides the config's dropout; without it, ``hidden_dropout_prob`` and
    ``attention_probs_dropout_prob`` must be equal, since gluonbert has one dropout rate.
    """
    if not isinstance(config, dict):
        raise ValueError(f'config.json holds a JSON {type(config).__name__}; expected an object '
                         f'of BERT settings (HF\'s BertConfig)')
    _check_architecture(config)
    config = {**_DEFAULTS, **config}
    for field, expected in _REQUIRED_VALUES.items():
        if config[field] != expected:
            raise _unsupported(field, config[field], repr(expected))
    if config['hidden_act'] not in _ACTIVATIONS:
        raise _unsupported('hidden_act', config['hidden_act'],
                           f'one of {sorted(_ACTIVATIONS)}')
    if config.get('pruned_heads'):
        raise _unsupported('pruned_heads', config['pruned_heads'], 'no pruned heads')
    if config.get('embedding_size', config.get('hidden_size')) != config.get('hidden_size'):
        raise _unsupported('embedding_size', config['embedding_size'],
                           'hidden_size (no factorized embedding)')
    missing = [field for field in _SIZES if field not in config]
    if missing:
        raise ValueError(f'config.json lacks {", ".join(missing)}')
    for field in _SIZES:
        value = config[field]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f'config.json: {field}={value!r}; expected a positive integer')
    if config['hidden_size'] % config['num_attention_heads']:
        raise ValueError(f'config.json: hidden_size={config["hidden_size"]} is not divisible '
                         f'by num_attention_heads={config["num_attention_heads"]}')
    if dropout is None:
        dropout = config['hidden_dropout_prob']
        if config['attention_probs_dropout_prob'] != dropout:
            raise ValueError(
                f'config.json: hidden_dropout_prob={dropout} and attention_probs_dropout_prob='
                f'{config["attention_probs_dropout_prob"]} differ, but gluonbert has one '
                f'dropout rate; pass dropout= to choose it')
    options = {option: config[field] for field, option in _SIZES.items()}
    options.update(dropout=dropout, activation=_ACTIVATIONS[config['hidden_act']],
                   embedding_layer_norm=True, layer_norm_eps=float(config['layer_norm_eps']),
                   tie_mlm_decoder=bool(config['tie_word_embeddings']))
    return options


def hf_config_from_options(options, *, pad_token_id=0):
    """The HF ``config.json`` (a dict) of a ``BERTModel`` with ``options`` (its ``config``)."""
    if not options['embedding_layer_norm']:
        raise ValueError('embedding_layer_norm=False has no HF BERT equivalent (HF BERT '
                         'always normalizes its embeddings); build the model with '
                         'embedding_layer_norm=True to save it in HF format')
    config = {'architectures': ['BertForPreTraining'], 'model_type': 'bert'}
    config.update({field: options[option] for field, option in _SIZES.items()})
    config.update(hidden_act=options['activation'], layer_norm_eps=options['layer_norm_eps'],
                  hidden_dropout_prob=options['dropout'],
                  attention_probs_dropout_prob=options['dropout'],
                  type_vocab_size=2, position_embedding_type='absolute',
                  tie_word_embeddings=options['tie_mlm_decoder'], pad_token_id=pad_token_id,
                  initializer_range=0.02)
    return config
