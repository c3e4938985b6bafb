"""Decoding script and command replies: the one place bytes from Redis become ``str``.

The broker's connections do not decode responses (payloads stay bytes for orjson), so
names, ids and messages in a reply arrive as ``bytes``; a RESP3 or decoded connection may
hand back ``str``, and numbers come as ``int``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ("text", "texts")


def text(value: bytes | str | int) -> str:
    """One reply element as ``str`` (bytes decoded as UTF-8, numbers written out)."""
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else str(value)


def texts(values: Iterable[Any]) -> list[str]:
    """Each element of a reply list as ``str``."""
    return [text(v) for v in values]
