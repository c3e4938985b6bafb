"""A worker module whose own import fails: it needs a package that is not installed."""

from __future__ import annotations

import importlib

importlib.import_module("aioworker_test_missing_dependency")

worker = None
