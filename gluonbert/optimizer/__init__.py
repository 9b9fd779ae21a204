"""Optimizers: BERT's Adam, AdamW and Adam as one implementation, registered with MXNet
(``gb_bertadam``, ``gb_adamw``, ``gb_adam``) on import."""
from .adam_variants import GB_Adam, GB_AdamW, GB_BERTAdam, OPTIMIZERS, AdamVariant
