"""Config validation: every shipped config is valid; each invalid field is named in the error."""

import importlib.util
import pathlib

import pytest

from dropout_study import run_config, run_files, train

NAMES = ("imdb_rnn", "imdb_cnn", "cifar10_vgg", "cifar100_conv", "denoise_unet")
CONFIGS = [pathlib.Path(__file__).resolve().parents[1] / "configs" / f"{n}.py" for n in NAMES]


def _module(path):
    spec = importlib.util.spec_from_file_location(f"_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cnn(**overrides):
    config = run_config.default_config("imdb", "text_cnn")
    config.update_from_flattened_dict(overrides)
    return config


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_variant_is_valid_and_documented(path):
    module = _module(path)
    assert module.VARIANTS[0] == "full" and "quick" in module.VARIANTS
    for variant in module.VARIANTS:
        run_config.validate(module.get_config(variant))
    assert module.get_config().to_dict() == module.get_config("full").to_dict()
    assert module.get_config("quick").data.source == "sample"
    doc = module.__doc__
    for needed in ("python -m dropout_study.main", "2 CPU cores", "GPU", "Result", "tfds"):
        assert needed in doc, f"{path.name} docstring lacks {needed!r}"
    with pytest.raises(ValueError, match="unknown variant 'fast'"):
        module.get_config("fast")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.name": "resnet"}, "model.name='resnet'"),
        ({"data.name": "mnist"}, "data.name='mnist'"),
        ({"model.output_rate": 1.5}, "model.output_rate=1.5"),
        ({"model.output_keep_prob": 0.0}, "model.output_keep_prob"),
        ({"batch_size": 0}, "config.batch_size=0"),
        ({"optimizer.learning_rate": -1.0}, "config.optimizer.learning_rate=-1.0"),
        ({"optimizer.name": "rmsprop"}, "config.optimizer.name='rmsprop'"),
        ({"optimizer.weight_decay": 1e-4}, "weight_decay=0.0001 needs optimizer.name='adamw'"),
        ({"regularization.l2": -0.1}, "config.regularization.l2=-0.1"),
        ({"monitor": "val_psnr"}, "config.monitor='val_psnr'"),
        ({"augment.flip": True}, "config.augment is set"),
        ({"task": "denoise"}, "config.task='denoise' does not fit"),
        ({"early_stopping.patience": -1}, "config.early_stopping.patience=-1"),
        ({"data.source": "web"}, "config.data.source='web'"),
    ],
)
def test_invalid_field_is_named(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        run_config.validate(_cnn(**overrides))


def test_model_and_dataset_must_match():
    config = run_config.default_config("cifar10", "text_cnn")
    with pytest.raises(ValueError, match="config.model.name='text_cnn' does not take"):
        run_config.validate(config)


def test_rate_in_a_per_level_tuple_is_named():
    config = run_config.default_config("cifar10", "vgg")
    config.model.block_rates = (0.2, 1.0, 0.2)
    with pytest.raises(ValueError, match="block_rates"):
        run_config.validate(config)


def test_missing_required_field_is_named():
    config = _cnn()
    del config["monitor"]
    with pytest.raises(ValueError, match="config.monitor is missing"):
        run_config.validate(config)
    config = _cnn()
    del config.optimizer["learning_rate"]
    with pytest.raises(ValueError, match="config.optimizer.learning_rate is missing"):
        run_config.validate(config)


def test_wrong_type_is_named():
    config = _cnn()
    with config.unlocked():
        del config["num_epochs"]
        config.num_epochs = "ten"
    with pytest.raises(ValueError, match="config.num_epochs='ten' has type str"):
        run_config.validate(config)


def test_invalid_config_fails_before_any_file_is_written(tmp_path):
    with pytest.raises(ValueError, match="output_rate"):
        train.train_and_evaluate(_cnn(**{"model.output_rate": 2.0}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_workdir_of_a_different_config_is_refused(tmp_path):
    config = _cnn()
    (tmp_path / run_files.CONFIG_FILE).write_text(run_config.config_json(config))
    run_config.check_workdir(config, tmp_path)  # the same config resumes
    run_config.check_workdir(_cnn(checkpoint_every_steps=7, log_every_steps=3), tmp_path)
    with pytest.raises(ValueError, match=r"model.output_rate: 0.5 -> 0.3.*new --workdir"):
        run_config.check_workdir(_cnn(**{"model.output_rate": 0.3}), tmp_path)
    with pytest.raises(ValueError, match="seed: 0 -> 1"):
        train.train_and_evaluate(_cnn(seed=1), tmp_path)


def test_model_must_fit_the_data():
    config = _cnn(**{"model.num_classes": 3})
    with pytest.raises(ValueError, match="config.model.num_classes=3 .* 2 classes"):
        run_config.check_against_data(config, {"num_classes": 2, "vocab_size": 20000})
    config = _cnn(**{"model.vocab_size": 1000})
    with pytest.raises(ValueError, match="config.model.vocab_size=1000 is smaller"):
        run_config.check_against_data(config, {"num_classes": 2, "vocab_size": 20000})
