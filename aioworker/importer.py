"""Load the application's ``Worker`` from a ``module:attribute`` string.

Each way this can fail has its own message, so a typo is told apart from a broken
import inside the user's module.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

from .errors import ImportStringError

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ("import_worker",)


def import_worker(spec: str) -> Worker:
    """Import ``module:attribute`` (attribute may be dotted) and check it is a Worker.

    :raises ImportStringError: with ``kind`` one of ``format``, ``module_missing``,
        ``import_failed``, ``attribute_missing``, ``not_worker``.
    """
    from .worker import Worker

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ImportStringError(
            f'import string "{spec}" must be in the form "module:attribute", e.g. "app:worker"',
            "format",
        )
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # import from the current directory, as `python -m` does
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ImportStringError(
                f'could not import module "{module_name}": no such module '
                "(is the current directory or PYTHONPATH right?)",
                "module_missing",
            ) from exc
        raise ImportStringError(
            f'importing module "{module_name}" failed inside it: {exc}', "import_failed"
        ) from exc
    except Exception as exc:
        raise ImportStringError(
            f'importing module "{module_name}" failed inside it: {type(exc).__name__}: {exc}',
            "import_failed",
        ) from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportStringError(
                f'module "{module_name}" has no attribute "{attr}"', "attribute_missing"
            ) from None
    if not isinstance(obj, Worker):
        raise ImportStringError(
            f'"{spec}" is a {type(obj).__name__}, not an aioworker Worker', "not_worker"
        )
    return obj
