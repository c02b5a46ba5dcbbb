"""Every claim of the five posts as data: its text, the post's number, its validity conditions
and the test that decides it, one module per post (`claims/post00N.py`); the machinery is in
`claims/core.py`."""

from dropout_study.claims import post000, post001, post002, post003, post004
from dropout_study.claims.core import Claim, Condition, Outcome, Part, evaluate

CLAIMS = tuple(c for m in (post000, post001, post002, post003, post004) for c in m.CLAIMS)
__all__ = ["CLAIMS", "Claim", "Condition", "Outcome", "Part", "evaluate", "for_study"]


def for_study(name):
    """The claims tested by study `name`."""
    return [c for c in CLAIMS if c.study == name]
