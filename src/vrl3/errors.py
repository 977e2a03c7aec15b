"""User-facing errors: one line naming the file or key at fault and how to fix it."""


class UserError(Exception):
    """Bad input from the user. The CLI prints it as one line and exits with status 2."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (libraries' messages span several lines), else its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
