"""Layer-wise lr decay: lr * decay ** (num_layers + 2 - depth), checked layer by layer."""
import pytest

from gluonbert.train.layerwise import layer_depths, layerwise_multipliers
from gluonbert.train.named_params import named_parameters
from tiny_bert import tiny_classifier

DECAY = 0.5


@pytest.fixture(scope='module')
def multipliers():
    net, bert = tiny_classifier(num_blks=3, embedding_layer_norm=True, hybridize=False)
    return layerwise_multipliers(list(named_parameters([net, bert])), DECAY)


@pytest.mark.parametrize('name, depth', [
    ('encoder.token_embedding.weight', 0),
    ('encoder.segment_embedding.weight', 0),
    ('encoder.pos_embedding', 0),
    ('encoder.embedding_ln.gamma', 0),
    ('encoder.blks.0.attention.W_q.weight', 1),
    ('encoder.blks.1.ffn.dense1.bias', 2),
    ('encoder.blks.2.addnorm2.ln.beta', 3),
    ('hidden.weight', 4),
    ('output.weight', 5),
    ('mlm.mlp.0.weight', 5),
    ('nsp.output.bias', 5),
])
def test_every_layer_gets_decay_to_the_distance_from_the_top(multipliers, name, depth):
    assert multipliers[name] == (depth, DECAY ** (3 + 2 - depth))


def test_the_output_layer_learns_at_the_full_rate_and_the_top_block_at_decay_squared(
        multipliers):
    assert multipliers['output.bias'][1] == 1.0
    assert multipliers['hidden.bias'][1] == DECAY
    assert multipliers['encoder.blks.2.attention.W_o.weight'][1] == DECAY ** 2
    assert multipliers['encoder.token_embedding.weight'][1] == DECAY ** 5


def test_every_parameter_of_a_block_shares_its_depth(multipliers):
    block1 = {depth for name, (depth, _) in multipliers.items()
              if name.startswith('encoder.blks.1.')}
    assert block1 == {2}


def test_names_nested_under_another_block_are_recognised():
    depths = layer_depths(['bert.encoder.blks.0.ffn.dense1.weight', 'bert.encoder.pos_embedding',
                           'bert.hidden.weight', 'classifier.weight'])
    assert list(depths.values()) == [1, 0, 2, 3]


def test_num_layers_below_the_blocks_present_is_an_error():
    with pytest.raises(ValueError, match='num_layers=1.*block 2'):
        layer_depths(['encoder.blks.2.ffn.dense1.weight'], num_layers=1)


def test_an_encoder_parameter_outside_embeddings_and_blocks_is_an_error():
    with pytest.raises(ValueError, match="'encoder.extra.weight'"):
        layer_depths(['encoder.blks.0.ffn.dense1.weight', 'encoder.extra.weight'])


@pytest.mark.parametrize('decay', [0.0, -0.5, 1.5])
def test_decay_outside_zero_one_is_an_error(decay):
    with pytest.raises(ValueError, match=f'layerwise_decay={decay}'):
        layerwise_multipliers(['output.weight'], decay)
