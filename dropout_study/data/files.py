"""Where data files live and whether they are intact: roots, sha256 checks and clear errors."""

import contextlib
import hashlib
import pathlib

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
SAMPLE_ROOT = PACKAGE_DIR / "sample"
# <repo>/../shared/data, found from this file so no machine-specific path is written anywhere.
LOCAL_ROOT = PACKAGE_DIR.parents[1].parent / "shared" / "data"
CHECKSUMS = "SHA256SUMS"

HOW_TO_GET_DATA = (
    "Three ways to get the data: (1) source='local' with data_dir set to a copy of the shared "
    "data folder (layout and SHA256SUMS as its MANIFEST.md describes; default "
    "<repo>/../shared/data); (2) source='tfds' with data_dir a tensorflow-datasets folder where "
    "the dataset is prepared "
    "(`tfds build <name> --data_dir=DIR` on a machine with internet, then copy DIR), or "
    "download=True; (3) source='sample' for the small real sample shipped in the package."
)


class CorruptDataError(ValueError):
    """A data file exists but its bytes are wrong (checksum mismatch) or cannot be parsed."""


def root_for(source, data_dir):
    """The folder a 'local' or 'sample' source reads from."""
    if source == "sample":
        return pathlib.Path(data_dir) if data_dir else SAMPLE_ROOT
    return pathlib.Path(data_dir) if data_dir else LOCAL_ROOT


def require(root, relpath, *, verify=True):
    """Path of root/relpath after checking it exists and, if `verify`, its sha256."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Data directory {root} does not exist. {HOW_TO_GET_DATA}")
    path = root / relpath
    if not path.is_file():
        raise FileNotFoundError(f"Data file {relpath!r} is missing from {root}. {HOW_TO_GET_DATA}")
    if verify:
        check_sha256(root, relpath)
    return path


def sha256(path):
    """Hex sha256 of a file, streamed (about 0.3 GB/s here: no cache needed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_checksums(root):
    """{relative path: sha256} from root/SHA256SUMS (`sha256sum` format)."""
    sums = pathlib.Path(root) / CHECKSUMS
    if not sums.is_file():
        raise FileNotFoundError(
            f"{sums} is missing: it lists the sha256 of every data file. Copy it together with "
            "the data, or set config.data.verify_checksums=False to skip the check."
        )
    table = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            table[name.lstrip("*")] = digest
    return table


def check_sha256(root, relpath):
    """CorruptDataError naming the file and the fix unless its sha256 matches SHA256SUMS."""
    expected = read_checksums(root).get(relpath)
    if expected is None:
        raise CorruptDataError(
            f"{relpath!r} is not listed in {pathlib.Path(root) / CHECKSUMS}; add its line "
            "(sha256sum format) or set config.data.verify_checksums=False."
        )
    actual = sha256(pathlib.Path(root) / relpath)
    if actual != expected:
        raise CorruptDataError(
            f"Checksum mismatch for {pathlib.Path(root) / relpath}: sha256 {actual}, expected "
            f"{expected} ({CHECKSUMS}). The file is corrupt or truncated: copy it again from the "
            "original data folder (see its MANIFEST.md), or for the shipped sample rebuild it with "
            "`python -m dropout_study.data.make_sample`."
        )


@contextlib.contextmanager
def parsing(path):
    """Turns any error while parsing `path` into a CorruptDataError that names the file."""
    try:
        yield
    except (FileNotFoundError, CorruptDataError):
        raise
    except Exception as err:  # pickle, zipfile, tarfile, PIL and numpy errors alike
        raise CorruptDataError(
            f"Cannot read data file {path}: {type(err).__name__}: {err}. Copy the file again "
            "(see MANIFEST.md of the data folder) or check that data_dir is the right folder."
        ) from err
