"""A file's type from its first bytes (magic numbers, puremagic), never from its name or the
Content-Type a client claims."""

from __future__ import annotations

import puremagic

HEAD_BYTES = 8192  # enough for every signature puremagic knows


def sniff(head: bytes) -> str | None:
    """The MIME type ``head`` (a file's first bytes) says it is; None when unrecognised."""
    if not head:
        return None
    try:
        found = puremagic.from_string(head, mime=True)
    except puremagic.PureError:
        return None
    return found or None
