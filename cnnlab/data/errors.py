"""The errors the data package raises, so callers can catch them in one place."""
from __future__ import annotations


class DataError(RuntimeError):
    """A dataset file is missing, malformed or could not be fetched.

    The message always names the file (or folder), what was expected and what was found.
    """


class ChecksumError(DataError):
    """A file's checksum differs from the published one; the file was not kept."""


class DownloadError(DataError):
    """A file could not be fetched; the message says where to put it by hand."""
