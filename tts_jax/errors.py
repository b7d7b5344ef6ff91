"""The one exception type for user mistakes.

Anything a user can get wrong (a path, a config value, an input text) raises :class:`UserError`
with a message naming the input and what was expected. The CLI prints it without a traceback.
"""


class UserError(ValueError):
    """Bad input from the user: printed as ``error: <message>`` by the CLI, exit status 2."""
