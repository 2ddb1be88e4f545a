"""Text from users and stores, made safe for a terminal."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def inert(text: object) -> str:
    """A stored or user-given string as inert text: control characters (terminal escape
    sequences, a newline that would forge a line of output) are shown as ``\\xNN``.
    (Print it without markup, so brackets stay brackets.)"""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))
