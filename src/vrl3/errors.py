"""User-facing errors: one line naming the file or key at fault and how to fix it."""


class UserError(Exception):
    """Bad input from the user. The CLI prints it as one line and exits with status 2."""
