"""The names users import: each public module's ``__all__`` is true to the module.

The modules checked are ``aioworker`` itself and those the README and docs tell users to
import from or reach into.  For each: it defines ``__all__``; every name listed exists
and is listed once; ``from module import *`` gives exactly those names.  For the top
package also: nothing public is left out of ``__all__`` (submodules aside), and
``__version__`` is the version of the installed distribution.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import types
from collections import Counter
from typing import Any

import pytest

import aioworker

PUBLIC_MODULES = (
    "aioworker",
    "aioworker.admin",
    "aioworker.benchmark",
    "aioworker.dashboard",
    "aioworker.ecs",
    "aioworker.extensions",
    "aioworker.inspect",
    "aioworker.lifespan",
    "aioworker.limits",
)


def _all_of(name: str) -> tuple[types.ModuleType, list[str]]:
    module = importlib.import_module(name)
    # defined in the module itself: without it ``import *`` falls back to every public
    # global, imports included, and the listing checks below would say nothing
    assert "__all__" in vars(module), f"{name} defines no __all__"
    listed = list(module.__all__)
    assert all(isinstance(n, str) for n in listed), f"{name}.__all__ holds a non-string"
    return module, listed


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_listed_names_exist(name: str) -> None:
    module, listed = _all_of(name)
    missing = [n for n in listed if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists names the module does not define: {missing}"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_listed_names_are_unique(name: str) -> None:
    _, listed = _all_of(name)
    twice = sorted(n for n, count in Counter(listed).items() if count > 1)
    assert not twice, f"{name}.__all__ lists these more than once: {twice}"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_star_import_gives_all(name: str) -> None:
    _, listed = _all_of(name)
    namespace: dict[str, Any] = {}
    exec(f"from {name} import *", namespace)
    namespace.pop("__builtins__", None)
    assert sorted(namespace) == sorted(set(listed))


def _is_future_feature(value: object) -> bool:
    # ``from __future__ import annotations`` binds a public-looking name
    return type(value).__module__ == "__future__"


def test_top_package_lists_every_public_name() -> None:
    listed = set(aioworker.__all__)
    unlisted = sorted(
        n
        for n, value in vars(aioworker).items()
        if not n.startswith("_")
        and n not in listed
        and not isinstance(value, types.ModuleType)
        and not _is_future_feature(value)
    )
    assert not unlisted, f"public in aioworker but missing from __all__: {unlisted}"


def test_top_package_lists_no_private_name() -> None:
    private = sorted(n for n in aioworker.__all__ if n.startswith("_") and n != "__version__")
    assert not private, f"aioworker.__all__ lists private names: {private}"


def test_version_is_the_installed_distribution() -> None:
    assert "__version__" in aioworker.__all__
    assert isinstance(aioworker.__version__, str)
    assert aioworker.__version__ == importlib.metadata.version("aioworker"), (
        "aioworker.__version__ differs from the installed metadata: reinstall (make venv)"
    )
