"""The allocator choice: which library is preloaded, and one re-exec at most."""

import pytest

from dropout_study import allocator


@pytest.fixture
def libraries(monkeypatch, tmp_path):
    """Both libraries 'installed' as files in tmp_path; returns their paths."""
    paths = {name: tmp_path / f"lib{name}.so" for name in allocator.PATHS}
    for path in paths.values():
        path.write_text("")
    monkeypatch.setattr(allocator, "PATHS", {n: (lambda p=p: str(p)) for n, p in paths.items()})
    return {n: str(p) for n, p in paths.items()}


def _exec_env(monkeypatch, environ):
    """The environment preload() re-executes with, or None when it does not re-execute."""
    seen = []
    monkeypatch.setattr(allocator.os, "environ", dict(environ))
    monkeypatch.setattr(allocator.os, "execve", lambda exe, argv, env: seen.append(env))
    allocator.preload()
    return seen[0] if seen else None


def test_auto_prefers_tcmalloc_then_mimalloc_then_glibc(monkeypatch, libraries):
    assert allocator.choose("auto") == ("tcmalloc", libraries["tcmalloc"])
    monkeypatch.setitem(allocator.PATHS, "tcmalloc", lambda: None)
    assert allocator.choose("auto") == ("mimalloc", libraries["mimalloc"])
    monkeypatch.setitem(allocator.PATHS, "mimalloc", lambda: None)
    assert allocator.choose("auto") == ("system", None)


def test_an_unknown_or_missing_allocator_is_refused_with_the_fix(monkeypatch, libraries):
    with pytest.raises(ValueError, match="'jemalloc' is not an allocator"):
        allocator.choose("jemalloc")
    monkeypatch.setitem(allocator.PATHS, "mimalloc", lambda: None)
    with pytest.raises(ValueError, match="pip install cmeel-mimalloc"):
        allocator.choose("mimalloc")


def test_preload_re_executes_once_and_replaces_another_allocator(monkeypatch, libraries):
    env = _exec_env(
        monkeypatch, {allocator.ENV: "mimalloc", "LD_PRELOAD": "/x/libtcmalloc.so:/y/a.so"}
    )
    assert env["LD_PRELOAD"] == f"{libraries['mimalloc']}:/y/a.so"
    assert _exec_env(monkeypatch, env) is None  # the re-executed process stays
    monkeypatch.setattr(allocator.os, "environ", env)
    assert allocator.active() == "mimalloc"


def test_system_runs_as_it_is(monkeypatch, libraries):
    assert _exec_env(monkeypatch, {allocator.ENV: "system"}) is None
    monkeypatch.setattr(allocator.os, "environ", {})
    assert allocator.active() == "system"


def test_the_installed_wheel_ships_mimalloc():
    path = allocator.mimalloc_path()
    assert path is not None and path.endswith("libmimalloc.so")  # an install requirement
