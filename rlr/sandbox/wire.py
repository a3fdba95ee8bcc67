"""The wire between the code under test and its judge: plain data only, strictly decoded.

Both sides run this module's source (it is pasted into their programs; they cannot import rlr). A value crosses
as tagged JSON, and only these exact types do: None, bool, int, float, complex, str, bytes, list, tuple, dict,
set, frozenset. Exact means `type(v) is int`, not `isinstance`: an int subclass with an `__eq__` that always
says True arrives as a *handle* (an opaque reference the judge can call or index but never compare), so a
verdict can only ever depend on values the judge itself holds and compares.

Frames are a 10-digit length then that many bytes of JSON; anything else (too long, malformed, a tag that is
not one of ours) raises `ValueError` on the reading side.
"""

from __future__ import annotations

import json
import os

MAX_FRAME = 64 * 2**20


def encode(value, register=None, depth=0):
    """A JSON-able form of `value`; non-plain values become `{"h": register(value)}` (TypeError without one)."""
    if depth > 200:
        raise ValueError("value nested deeper than 200 levels")
    t = type(value)
    if value is None or t is bool or t is int or t is float or t is str:
        return value
    if t is list:
        return [encode(v, register, depth + 1) for v in value]
    if t is tuple:
        return {"t": [encode(v, register, depth + 1) for v in value]}
    if t is dict:
        return {"d": [[encode(k, register, depth + 1), encode(v, register, depth + 1)] for k, v in value.items()]}
    if t is set:
        return {"s": [encode(v, register, depth + 1) for v in value]}
    if t is frozenset:
        return {"f": [encode(v, register, depth + 1) for v in value]}
    if t is bytes:
        return {"b": value.hex()}
    if t is complex:
        return {"c": [value.real, value.imag]}
    if register is None:
        raise TypeError("only plain data (None, bool, int, float, complex, str, bytes, list, tuple, dict, set) "
                        f"crosses to the code under test, not {t.__name__}")
    return {"h": register(value)}


def decode(obj, resolve=None, depth=0):
    """The value `encode` produced; `resolve(handle_id)` turns handles back into objects (ValueError without)."""
    if depth > 200:
        raise ValueError("value nested deeper than 200 levels")
    t = type(obj)
    if obj is None or t is bool or t is int or t is float or t is str:
        return obj
    if t is list:
        return [decode(v, resolve, depth + 1) for v in obj]
    if t is not dict or len(obj) != 1:
        raise ValueError("malformed value on the wire")
    (tag, body), = obj.items()
    if tag == "h" and type(body) is int and resolve is not None:
        return resolve(body)
    if tag in ("t", "s", "f", "d", "c") and type(body) is not list:
        raise ValueError("malformed value on the wire")
    if tag == "t":
        return tuple(decode(v, resolve, depth + 1) for v in body)
    if tag == "s":
        return {decode(v, resolve, depth + 1) for v in body}
    if tag == "f":
        return frozenset(decode(v, resolve, depth + 1) for v in body)
    if tag == "d":
        out = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("malformed dict on the wire")
            out[decode(pair[0], resolve, depth + 1)] = decode(pair[1], resolve, depth + 1)
        return out
    if tag == "b" and type(body) is str:
        return bytes.fromhex(body)
    if tag == "c" and len(body) == 2 and all(type(x) in (int, float) for x in body):
        return complex(body[0], body[1])
    raise ValueError("malformed value on the wire")


def send(fd, message):
    data = json.dumps(message, separators=(",", ":")).encode()
    if len(data) > MAX_FRAME:
        raise ValueError(f"message over {MAX_FRAME} bytes")
    data = b"%010d" % len(data) + data
    while data:
        data = data[os.write(fd, data):]


def _read_exactly(fd, n):
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(fd):
    head = _read_exactly(fd, 10)
    if not head.isdigit() or int(head) > MAX_FRAME:
        raise ValueError("malformed frame on the wire")
    return json.loads(_read_exactly(fd, int(head)))
