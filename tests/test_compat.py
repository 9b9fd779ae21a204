"""The MXNet 1.9.1 internals gluonbert relies on, each through ``gluonbert.compat`` on real
MXNet objects: when an MXNet upgrade moves one, the failing test names it."""
import os
import resource
import signal

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

from gluonbert import compat


class Net(gluon.HybridBlock):
    def __init__(self):
        super().__init__()
        with self.name_scope():
            self.dense = nn.Dense(3, in_units=4)
            self.norm = nn.LayerNorm(epsilon=1e-7, in_channels=3)
            self.scale = self.params.get('scale', shape=(1,), init=mx.init.One())

    def hybrid_forward(self, F, x, y=None, scale=None):
        out = F.broadcast_mul(self.norm(self.dense(x)), scale)
        return out if y is None else out + y


def trained(contexts=(mx.cpu(),), kvstore='device'):
    net = Net()
    net.initialize(ctx=list(contexts))
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 0.1},
                            kvstore=kvstore, update_on_kvstore=False)
    for context in contexts:
        with autograd.record():
            loss = (net(mx.nd.arange(8, ctx=context).reshape((2, 4))) ** 3).sum()
        loss.backward()
    trainer.step(2)
    return net, trainer


def test_the_structural_names_are_the_attribute_path():
    assert sorted(compat.structural_parameters(Net())) == [
        'dense.bias', 'dense.weight', 'norm.beta', 'norm.gamma', 'scale']


def test_children_own_parameters_and_layer_options_are_read():
    net = Net()
    assert list(compat.child_blocks(net)) == ['dense', 'norm']
    assert list(compat.own_parameter_names(net)) == ['scale']
    assert compat.dense_units(net.dense) == (3, 4)
    options = compat.layer_norm_options(net.norm)
    assert (options['eps'], options['axis'], options['center'], options['scale']) == \
        (1e-7, -1, True, True)
    loss = gluon.loss.SoftmaxCELoss()
    assert compat.softmax_ce_options(loss) == (-1, True, False, None)
    assert compat.softmax_ce_options(gluon.loss.SoftmaxCELoss(sparse_label=False))[1] is False


def test_the_trainer_s_optimizer_state_is_reachable_and_settable():
    net, trainer = trained()
    indices = compat.trainer_param_indices(trainer)
    assert set(indices) == {p.name for p in net.collect_params().values()}
    updater = compat.trainer_updaters(trainer)[0]
    mean, variance = updater.states[indices[net.dense.weight.name]]
    assert mean.shape == variance.shape == (3, 4) and abs(mean).sum() > 0
    assert compat.trainer_contexts(trainer) == [mx.cpu()]
    counts = compat.update_counts(trainer.optimizer)
    assert counts[0][indices[net.dense.weight.name]] == 1
    compat.set_update_counts(trainer.optimizer, [mx.cpu()], {indices[net.dense.weight.name]: 7})
    assert compat.update_counts(trainer.optimizer)[0] == {indices[net.dense.weight.name]: 7}


def test_gradient_freshness_is_set_by_backward_and_settable():
    net = Net()
    net.initialize()
    data = compat.parameter_arrays(net.dense.weight)[0]
    with autograd.record():
        net(mx.nd.ones((2, 4))).sum().backward()
    assert compat.has_fresh_grad(data) is True
    compat.set_fresh_grad(data, False)
    assert compat.has_fresh_grad(data) is False


def test_parameter_arrays_and_deferred_initialisation():
    deferred = nn.Dense(2)
    deferred.initialize()
    assert compat.is_deferred(deferred.weight)
    assert compat.raw_parameter_arrays(deferred.weight) is None
    net = Net()
    net.initialize(ctx=[mx.cpu(0), mx.cpu(1)])
    arrays = compat.parameter_arrays(net.dense.weight)
    assert [a.context for a in arrays] == [mx.cpu(0), mx.cpu(1)]
    assert not compat.is_deferred(net.dense.weight)
    views = [a * 2 for a in arrays]
    compat.set_raw_parameter_arrays(net.dense.weight, views)
    assert net.dense.weight.data(mx.cpu(1)) is views[1]


def test_a_cached_graph_is_traced_again_for_another_call_structure():
    net = Net()
    net.initialize()
    assert not compat.is_hybridized(net)
    net.hybridize()
    assert compat.is_hybridized(net)
    x = mx.nd.ones((2, 4))
    compat.trace_for(net, 'one input')
    first = net(x).asnumpy()
    compat.trace_for(net, 'one input')  # the same structure keeps the graph
    np.testing.assert_allclose(net(x).asnumpy(), first, rtol=1e-6)
    compat.trace_for(net, 'two inputs')
    np.testing.assert_allclose(net(x, mx.nd.ones((2, 3))).asnumpy(), first + 1, rtol=1e-6)


def test_amp_state_is_a_boolean():
    assert compat.amp_initialized() in (True, False)


def test_the_trainer_store_is_created_and_initialised_before_the_first_step():
    net = Net()
    contexts = [mx.cpu(0), mx.cpu(1)]
    net.initialize(ctx=contexts)
    store = mx.kv.create('device')
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1},
                            kvstore=store, update_on_kvstore=False)
    assert compat.trainer_kvstore(trainer) is store
    assert set(compat.trainer_parameters(trainer)) == set(net.collect_params().values())
    assert not compat.updates_on_servers(trainer)
    compat.initialise_store(trainer)
    compat.initialise_store(trainer)  # idempotent
    assert compat.trainer_kvstore(trainer) is store
    compat.barrier(mx.kv.create('local'))


def test_the_onnx_graph_class_converts_symbols():
    assert hasattr(compat.onnx_graph_class()(), 'create_onnx_graph_proto')


def test_a_write_onto_a_full_disk_is_an_oserror_and_a_garbage_file_a_value_error(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
    try:
        with pytest.raises(OSError, match='incomplete'):  # MXNet itself says nothing
            compat.save_ndarrays(str(tmp_path / 'a.nd'), {'x': mx.nd.ones((1000,))})
        net = Net()
        net.initialize()
        net.dense.weight.set_data(mx.nd.ones((3, 4)))
        big = nn.Dense(1000, in_units=100)
        big.initialize()
        with pytest.raises(OSError, match='disk is full'):
            compat.save_parameters(big, str(tmp_path / 'b.params'))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    (tmp_path / 'c.nd').write_bytes(b'garbage')
    with pytest.raises(ValueError, match='c.nd is not an MXNet array file'):
        compat.load_ndarrays(str(tmp_path / 'c.nd'))


def test_dropout_options_are_the_rate_and_axes_of_a_dropout_block():
    assert compat.dropout_options(nn.Dropout(0.3)) == (0.3, ())
    assert compat.dropout_options(nn.Dropout(0.1, axes=(1,))) == (0.1, (1,))


def test_the_backend_a_block_was_hybridized_with_is_read():
    net = Net()
    assert compat.hybridized_backend(net) is None
    net.hybridize(backend='MKLDNN')
    assert compat.hybridized_backend(net) == 'MKLDNN'


def test_numpy_mode_arrays_and_symbols_are_told_from_legacy_ones():
    assert compat.is_np_value(mx.np.ones(2)) and compat.is_np_value(mx.sym.np.ones(2))
    assert not compat.is_np_value(mx.nd.ones(2)) and not compat.is_np_value(mx.sym.var('x'))


def test_a_file_saved_under_set_np_loads_with_numpy_shapes_switched_on(tmp_path):
    path = str(tmp_path / 'scalar.params')
    with mx.util.np_shape(True):
        mx.nd.save(path, {'x': mx.nd.array(np.float32(2.0).reshape(()))})
    with pytest.raises(mx.base.MXNetError, match='np shape semantics'):
        mx.nd.load(path)
    assert compat.np_shape_retried(lambda: mx.nd.load(path))['x'].shape == ()


def test_a_garbage_parameter_file_or_library_is_a_value_or_os_error(tmp_path):
    (tmp_path / 'net.params').write_bytes(b'garbage')
    with pytest.raises(ValueError, match='net.params is not an MXNet parameter file'):
        compat.load_parameters(Net(), str(tmp_path / 'net.params'))
    (tmp_path / 'lib.so').write_bytes(b'garbage')
    with pytest.raises(OSError):
        compat.load_library(str(tmp_path / 'lib.so'))


def test_lib_api_source_adds_bfloat16_to_mxnets_own():
    patched = compat.lib_api_source()
    assert 'case 12:' in patched and 'Invalid dtype flag' in patched
    with open(os.path.join(os.path.dirname(mx.__file__), 'src', 'lib_api.cc')) as f:
        assert 'case 12:' not in f.read()
