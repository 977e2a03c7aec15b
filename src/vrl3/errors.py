"""User-facing errors: one line naming the file or key at fault and how to fix it."""

import re

ANSI_STYLE = re.compile(r"\x1b\[[0-9;]*m")  # some libraries (torch) bold parts of their messages


class UserError(Exception):
    """Bad input from the user. The CLI prints it as one line and exits with status 2."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (libraries' messages span several lines), else its type's name."""
    text = ANSI_STYLE.sub("", str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__
