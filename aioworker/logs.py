"""Logging set-up for the CLI: text for people, JSON lines for machines.

Job log lines carry ``job_id``, ``task``, ``queue``, ``attempt`` and ``event`` (and
``error_class`` on errors) as record attributes; the JSON format emits them as fields.
Lines logged by a job's own code get the job's fields too
(:class:`~aioworker.logfields.JobFieldsFilter`).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Literal

import orjson

from .logfields import JobFieldsFilter

__all__ = ("JsonFormatter", "setup_logging")

_FIELDS = ("job_id", "task", "queue", "attempt", "event", "error_class")


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str = "INFO", fmt: Literal["text", "json"] = "text") -> None:
    """Configure the root logger for a worker process (stderr)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobFieldsFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
