"""The d2l fine-tuning classifier: BERT's ``<cls>`` features through ``hidden`` into ``output``."""
from mxnet.gluon import nn

from .inputs import check_input_tuple
from .legacy import LegacyHybridBlock


class BERTClassifier(LegacyHybridBlock):
    """``BERTClassifier(bert)`` of d2l's NLI chapter, sharing ``bert.encoder`` and ``bert.hidden``.

    ``forward((tokens, segments, valid_lens))`` returns (batch, num_classes) logits. The new
    ``output`` layer must be initialized by the caller, as in the chapter
    (``net.output.initialize(ctx=devices)``).
    """

    def __init__(self, bert, num_classes=3, **kwargs):
        super().__init__(**kwargs)
        self.encoder_config = getattr(bert, 'config', None)  # to save and rebuild the model
        with self.name_scope():
            self.encoder = bert.encoder
            self.hidden = bert.hidden
            self.output = nn.Dense(num_classes, in_units=bert.encoder.num_hiddens)

    def _check_inputs(self, inputs):
        check_input_tuple(type(self).__name__, inputs)
        self.encoder._check_inputs(*inputs)

    def hybrid_forward(self, F, inputs):
        tokens_X, segments_X, valid_lens_x = inputs
        encoded_X = self.encoder(tokens_X, segments_X, valid_lens_x)
        cls = F.reshape(F.slice_axis(encoded_X, axis=1, begin=0, end=1), shape=(0, -1))
        return self.output(self.hidden(cls))
