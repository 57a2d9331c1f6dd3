"""Errors the repositories raise instead of the ORM's, so layers above need not import it."""

from __future__ import annotations


class Conflict(Exception):
    """A row could not be stored because the database refused it (a unique key already taken,
    or another constraint); the transaction was rolled back. The database error is ``__cause__``."""
