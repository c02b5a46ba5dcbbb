"""How a bad input is reported: the exception types it raises and its message as one line."""

from collections.abc import Sequence

# What a bad input raises: the project's messages name the problem and the fix.
INPUT_ERRORS = (ValueError, OSError, FloatingPointError)


def innermost(err):
    """The exception at the root of `err`'s chain: the one that says what was wrong."""
    while err.__cause__ is not None or (
        err.__context__ is not None and not err.__suppress_context__
    ):
        err = err.__cause__ or err.__context__
    return err


def one_line(err):
    """`err` as one line: what the command prints for a bad input."""
    text = str(err).strip().strip("\"'") or type(err).__name__
    return " ".join(text.split())


def check_choice(name: str, value, allowed: Sequence) -> None:
    """Raises ValueError unless `value` is one of `allowed`; the message names the field."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {tuple(allowed)}; pick one of these.")
