"""The repository the notebooks clone in Colab and the README's badges open, kept in step.

`REPOSITORY` is where the project is published. A fork points every badge and every notebook's
set-up cell at itself with one command (the default is the `origin` remote's GitHub URL):

  python -m dropout_study.colab_links --repository=https://github.com/NAME/dropout_study
"""

import pathlib
import re
import subprocess

import nbformat
from absl import app, flags

REPOSITORY = "https://github.com/dropout-study/dropout_study"
ROOT = pathlib.Path(__file__).resolve().parents[1]
GITHUB = re.compile(r"(?:https://github\.com/|git@github\.com:)([\w.-]+/[\w.-]+?)(?:\.git)?/?$")
# A README badge link: the Colab viewer of a notebook on the main branch of a GitHub repository.
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/main/colabs/")

SETUP_CELL = """\
# Set-up: run from the repository root (configs/ sits beside the package), package installed.
# In Colab this clones the repository and pip-installs it; in a checkout or CI it does nothing.
import importlib.metadata
import os
import pathlib

REPOSITORY = "{repository}"  # set by dropout_study.colab_links

if pathlib.Path.cwd().name == "colabs":
    os.chdir("..")
if not pathlib.Path("configs").is_dir():
    if not pathlib.Path("dropout_study/configs").is_dir():
        !git clone -q --depth 1 {{REPOSITORY}} dropout_study
    os.chdir("dropout_study")
try:
    importlib.metadata.version("dropout_study")
except importlib.metadata.PackageNotFoundError:
    !pip install -q -e ."""


def github_path(url):
    """'owner/name' of a GitHub URL (https or ssh); ValueError naming the URL otherwise."""
    match = GITHUB.match(url.strip())
    if not match:
        raise ValueError(
            f"{url!r} is not a GitHub repository URL; Colab opens notebooks from GitHub. "
            "Fix: pass --repository=https://github.com/OWNER_NAME/REPO_NAME."
        )
    return match.group(1)


def setup_cell(repository):
    """The first cell of every notebook, cloning `repository`."""
    return SETUP_CELL.format(repository=f"https://github.com/{github_path(repository)}")


def badge_prefix(repository):
    """The Colab link of colabs/ in `repository`, which every README badge starts with."""
    return f"https://colab.research.google.com/github/{github_path(repository)}/blob/main/colabs/"


def retarget(root, repository):
    """Points README.md's badges and every colabs/*.ipynb set-up cell at `repository`."""
    root = pathlib.Path(root)
    readme = root / "README.md"
    readme.write_text(BADGE.sub(badge_prefix(repository), readme.read_text()))
    for path in sorted((root / "colabs").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        notebook.cells[0].source = setup_cell(repository)
        nbformat.write(notebook, path)


def origin_url(root):
    """The `origin` remote's URL of the checkout at `root`, or None when there is none."""
    result = subprocess.run(
        ["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else None


def main(argv):
    del argv
    repository = flags.FLAGS.repository or origin_url(ROOT)
    if repository is None:
        raise app.UsageError("no `origin` remote to derive the repository from; pass --repository")
    retarget(ROOT, repository)
    print(f"README.md badges and colabs/*.ipynb now open and clone {repository}")


if __name__ == "__main__":
    flags.DEFINE_string("repository", None, "GitHub URL; default: the origin remote's URL.")
    app.run(main)
