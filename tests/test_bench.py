"""The benchmark's FLOP counts, checked against counts written out by hand for the posts' nets."""

import pytest

from dropout_study import bench, models


def _config(name, **fields):
    config = models.default_config(name)
    config.update(fields)
    return config


def test_vgg_flops_follow_the_post_001_layer_shapes():
    # (output size, in channels, out channels) of the six 3x3 convs: SAME, VALID, pool, ...
    convs = [(32, 3, 64), (30, 64, 64), (15, 64, 128), (13, 128, 128), (6, 128, 256), (4, 256, 256)]
    macs = sum(size * size * 9 * c_in * c_out for size, c_in, c_out in convs)
    macs += 2 * 2 * 256 * 512 + 512 * 512 + 512 * 10
    config = _config("vgg", filters=(64, 128, 256), ndense=512)
    assert bench.forward_flops(config, (128, 32, 32, 3)) == 2 * 128 * macs


def test_lstm_flops_count_input_and_recurrent_projections_every_step():
    config = _config("lstm", embed_dim=128, hidden_dim=128)
    per_step = 4 * 128 * 128 + 4 * 128 * 128  # x @ W and h @ U for the four gates
    assert bench.forward_flops(config, (64, 200)) == 2 * 64 * (200 * per_step + 128 * 2)


def test_text_cnn_flops_use_valid_positions_of_each_width():
    config = _config("text_cnn", embed_dim=128, num_filters=128, kernel_sizes=(3, 5))
    macs = 198 * 3 * 128 * 128 + 196 * 5 * 128 * 128 + 2 * 128 * 2
    assert bench.forward_flops(config, (64, 200)) == 2 * 64 * macs


def test_unknown_model_is_refused_by_name():
    with pytest.raises(ValueError, match="'mlp'"):
        bench.forward_flops(_config("mlp"), (8, 784))
