"""Real data for every study through one call: `load(config.data) -> Dataset`.

Datasets: 'imdb', 'cifar10', 'cifar100', 'denoise' (pairs built from CIFAR). Sources, chosen by
config and never swapped silently: 'sample' (a small real sample shipped in the package),
'local' (the files of a data folder, default <repo>/../shared/data, checked by sha256) and
'tfds' (tensorflow-datasets, no download unless config.data.download=True). CIFAR-10 and
CIFAR-100 from 'local' are exact-pixel subsets (variant 'exact') or full lossy JPEG copies
(variant 'jpeg', decoded once into the cache of cache.py).
"""

from dropout_study.data import cifar, denoise, imdb
from dropout_study.data.data_config import DATASETS, SOURCES, default_config, resolve
from dropout_study.data.files import CorruptDataError
from dropout_study.data.splits import Dataset, Split

__all__ = [
    "DATASETS",
    "SOURCES",
    "CorruptDataError",
    "Dataset",
    "Split",
    "default_config",
    "load",
    "resolve",
]

_LOADERS = {
    "imdb": imdb.load,
    "cifar10": cifar.load,
    "cifar100": cifar.load,
    "denoise": denoise.load,
}


def load(config):
    """Loads config (a data ConfigDict, see `default_config`) into a Dataset.

    info records name, source, origin, sizes, validation choice and everything needed to say
    plainly in results which data a run used (info["summary"]).
    """
    config = resolve(config)
    dataset = _LOADERS[config.name](config)
    info = dict(name=config.name, source=config.source, data_dir=config.data_dir, **dataset.info)
    info["summary"] = (
        f"{config.name} from {config.source} [{info['origin']}]: train {info['sizes']['train']}, "
        f"validation {info['sizes']['validation']} ({config.validation}), "
        f"test {info['sizes']['test']}"
    )
    return Dataset(dataset.train, dataset.validation, dataset.test, info)
