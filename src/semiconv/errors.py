"""Exceptions with messages meant for people, not tracebacks."""


class SemiconvError(Exception):
    """Base class: the message names the file (if any) and the problem."""


class InputError(SemiconvError):
    """An image, annotation or folder that cannot be used as given."""


class CheckpointError(SemiconvError):
    """A model folder or checkpoint that is missing, corrupt or does not match its config."""
