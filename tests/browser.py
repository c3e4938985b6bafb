"""Headless Chromium for the dashboard's browser tests and ``docs/screenshots.py``.

Debian's ``chromium`` package (``make browser-deps`` installs it) driven by Playwright for
Python; Playwright's own browser downloads are never used.  Without Chromium or Playwright
the tests skip, except when ``CI`` is set: there they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser

__all__ = ("CHROMIUM_ARGS", "chromium_path", "launch", "require_chromium")

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium_path() -> str | None:
    """``$AIOWORKER_CHROMIUM``, else ``/usr/bin/chromium``, else ``chromium`` on PATH."""
    for candidate in (os.environ.get("AIOWORKER_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_chromium() -> str:
    """The Chromium binary; skips the test without it (fails it when ``CI`` is set)."""
    reason = None
    path = chromium_path()
    if path is None:
        reason = "chromium not found (make browser-deps installs Debian's chromium)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install -e '.[dev]')"
    if reason is not None:
        if _in_ci():
            pytest.fail(f"{reason} (required when CI is set)", pytrace=False)
        pytest.skip(reason)
    assert path is not None
    return path


@asynccontextmanager
async def launch(executable: str) -> AsyncIterator[Browser]:
    """A headless Chromium for the block."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            await browser.close()
