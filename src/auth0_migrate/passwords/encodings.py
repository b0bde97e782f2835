"""Node.js `Buffer` encodings, as Auth0 (which runs on Node) reads hash values, salts and passwords.

See the package docstring for what Node does that Python's codecs do not.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any, Final

_HEX_PAIRS_RE: Final = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_B64_JUNK_RE: Final = re.compile(r"[^A-Za-z0-9+/\-_]")
URLSAFE_TO_STD: Final = str.maketrans("-_", "+/")


def node_hex(value: str) -> bytes:
    """``Buffer.from(value, "hex")``: decode whole pairs up to the first invalid character."""
    match = _HEX_PAIRS_RE.match(value)
    return bytes.fromhex(match.group(0)) if match else b""


def node_base64(value: str) -> bytes:
    """``Buffer.from(value, "base64")``: both alphabets, stop at ``=``, skip anything else."""
    cut = value.find("=")
    if cut >= 0:
        value = value[:cut]
    cleaned = _B64_JUNK_RE.sub("", value).translate(URLSAFE_TO_STD)
    usable = len(cleaned) - (len(cleaned) % 4 == 1)  # a lone trailing sextet carries no byte
    cleaned = cleaned[:usable]
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))


def node_utf8(value: str) -> bytes:
    """UTF-8 as Node writes it: lone surrogates become U+FFFD instead of raising."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        repaired = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return repaired.encode("utf-8")


def node_latin1(value: str) -> bytes:
    """Node's ``latin1``/``binary``/``ascii`` writers: the low byte of each UTF-16 code unit."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-16-le", "surrogatepass")[::2]


def node_utf16le(value: str) -> bytes:
    return value.encode("utf-16-le", "surrogatepass")


DATA_DECODERS: Final[dict[str, Callable[[str], bytes]]] = {
    "hex": node_hex,
    "base64": node_base64,
    "utf8": node_utf8,
}

PASSWORD_ENCODERS: Final[dict[str, Callable[[str], bytes]]] = {
    "utf8": node_utf8,
    "ascii": node_latin1,
    "latin1": node_latin1,
    "binary": node_latin1,
    "utf16le": node_utf16le,
    "ucs2": node_utf16le,
}


class Malformed(Exception):
    """Internal: the credential cannot be interpreted; ``verify_password`` answers False."""


def decode(value: Any, encoding: Any) -> bytes:
    if not isinstance(value, str):
        raise Malformed
    decoder = DATA_DECODERS.get(encoding if encoding is not None else "utf8")
    if decoder is None:
        raise Malformed
    return decoder(value)


def as_object(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed
    return value
