"""Encoding of job payloads, results and errors with orjson (never pickle).

Stored job records are ``b"<enqueued_ms>|<json>"``: the enqueue script prefixes the
Redis time, so enqueue times compare across machines.  The json object has the keys
``t`` (task), ``a`` (args), ``k`` (kwargs) and, when set at enqueue, ``r`` (retries) and
``o`` (timeout in seconds).  Delayed jobs carry ``d`` (delay in ms) or ``at`` (run time
in ms), from which the worker measures the latency of their start.  Feature keys:

- ``tc``: W3C trace context (``{"traceparent": ..., "tracestate": ...}``) of the code that
  enqueued the job, when OpenTelemetry is installed and a span was current
  (:mod:`aioworker.tracing`).
- ``b``: the id of the batch the job is a child of (:mod:`aioworker.batches`); the worker
  passes it to the complete and dead scripts, which append the outcome to the queue's
  batch outbox.
- ``bc``: on a batch callback, ``{"id", "cb" (complete|success), "n": "total|succeeded|
  failed|skipped|finished_ms"}``, the counts when the callback became due.
- ``g``: the job's fair-share group (``JobSpec.group``; :mod:`aioworker.groups`).
- ``w``: ``[key, ttl_ms]`` of a ``while_running`` unique job, for the gate that takes its
  lock when it runs (:mod:`aioworker.unique`).

Feature keys come from ``JobSpec.extra`` and from the ``extra`` argument of
:func:`encode_spec`; they never replace the keys above.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .errors import PayloadError, PayloadTooLarge
from .job import JobSpec

__all__ = (
    "DecodeError",
    "decode_record",
    "decode_state",
    "dumps",
    "encode_spec",
    "encode_state",
    "loads",
    "split_stamped",
)


class DecodeError(ValueError):
    """A stored record could not be decoded."""


def dumps(value: Any) -> bytes:
    """orjson encoding with non-string dict keys allowed."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


loads = orjson.loads


def encode_spec(spec: JobSpec, max_bytes: int, extra: Mapping[str, Any] | None = None) -> bytes:
    """Encode a job's payload.

    :param extra: feature keys added to the payload (documented above).

    :raises PayloadError: if an argument cannot be encoded as JSON.
    :raises PayloadTooLarge: if the encoding is larger than ``max_bytes``.
    """
    body: dict[str, Any] = {"t": spec.task, "a": spec.args, "k": spec.kwargs}
    if spec.retries is not None:
        body["r"] = spec.retries
    if spec.timeout_s is not None:
        body["o"] = spec.timeout_s
    if spec.at_ms:
        body["at"] = spec.at_ms
    elif spec.delay_ms:
        body["d"] = spec.delay_ms
    if spec.group is not None:
        body["g"] = spec.group
    if spec.unique is not None and spec.unique.mode == "running":
        body["w"] = [spec.unique.key, spec.unique.ttl_ms]
    if extra:
        body.update(extra)
    for key, value in spec.extra.items():
        body.setdefault(key, value)
    try:
        data = dumps(body)
    except TypeError as exc:
        raise PayloadError(
            f"arguments of task {spec.task!r} cannot be encoded as JSON: {exc}"
        ) from exc
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"arguments of task {spec.task!r} encode to {len(data)} bytes, "
            f"more than max_payload_bytes={max_bytes}"
        )
    return data


def split_stamped(raw: bytes) -> tuple[int, bytes]:
    """Split a ``<ms>|<json>`` record into its time stamp and body.

    :raises DecodeError: if the record has no valid stamp.
    """
    stamp, sep, body = raw.partition(b"|")
    if not sep:
        raise DecodeError("record has no time stamp")
    try:
        return int(stamp), body
    except ValueError as exc:
        raise DecodeError(f"bad time stamp {stamp[:20]!r}") from exc


def decode_record(raw: bytes) -> tuple[int, dict[str, Any]]:
    """Decode a stored job record into ``(enqueued_ms, body)``.

    :raises DecodeError: if it is not a valid record.
    """
    enqueued_ms, body = split_stamped(raw)
    try:
        data = loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"payload is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("t"), str):
        raise DecodeError("payload has no task name")
    args, kwargs = data.get("a", []), data.get("k", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise DecodeError("payload arguments are not a list and an object")
    retries, timeout = data.get("r"), data.get("o")
    if retries is not None and not (
        type(retries) in (int, float) and 0 <= retries < 2**31 and retries == int(retries)
    ):
        raise DecodeError(f"retries (r) is not a whole number >= 0: {str(retries)[:40]!r}")
    if timeout is not None and (
        type(timeout) not in (int, float) or not 0 <= timeout < float("inf")
    ):
        raise DecodeError(f"timeout (o) is not a number >= 0: {str(timeout)[:40]!r}")
    return enqueued_ms, data


def encode_state(user: Any, steps: Mapping[str, Any], cursors: Mapping[str, Any]) -> bytes:
    """A checkpoint as stored: ``{"u": <user state>, "s": <steps>, "c": <cursors>}``."""
    return dumps({"u": user, "s": steps, "c": cursors})


def decode_state(raw: bytes) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Split a stored checkpoint into (user state, completed steps, iteration cursors).

    :raises DecodeError: if it is not JSON, or its steps or cursors are not objects.
    """
    if not raw:
        return None, {}, {}
    try:
        data = loads(raw)
    except ValueError as exc:
        raise DecodeError(f"the checkpoint is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "s" in data:
        steps, cursors = data["s"], data.get("c") or {}
        if not isinstance(steps, dict) or not isinstance(cursors, dict):
            raise DecodeError("the checkpoint's steps or cursors are not objects")
        return data.get("u"), steps, cursors
    return data, {}, {}
