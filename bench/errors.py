"""The one base class of user-facing errors.

A ``UserError`` is bad input (a suite, a dataset folder, a command line, a missing checkpoint): the command
line prints its message alone, with no traceback, and exits with code 2. This module imports nothing, so
catching these errors costs no import of torch, timm or the data adapters.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input; ``str()`` is one message that names the file or field and the fix."""
