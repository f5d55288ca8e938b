"""Error messages on one line: what the CLI prints, what the app shows, what the library raises."""
from __future__ import annotations


def one_line(err: BaseException | str) -> str:
    """The message with its whitespace (newlines included) folded to single spaces; the exception's
    type name when it has no message."""
    text = " ".join(str(err).split())
    if text:
        return text
    return type(err).__name__ if isinstance(err, BaseException) else "unknown error"
