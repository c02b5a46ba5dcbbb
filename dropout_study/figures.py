"""Matplotlib figures without pyplot: no global state, the Agg canvas, safe in any process."""


def figure(rows=1, cols=1, *, figsize, squeeze=True):
    """A figure and its axes (matplotlib is imported here: processes that never plot skip it)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def save(fig, path) -> str:
    """Lays `fig` out, writes it to `path` and returns the file's name."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path.name
