"""The one error type simlab raises: its message says what failed and what to do."""


class SimlabError(Exception):
    """A problem the user can fix; the CLI prints the message without a traceback."""
