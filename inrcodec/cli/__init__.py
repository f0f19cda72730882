"""The ``inrcodec`` command line: ``main`` is the entry point (pyproject's ``inrcodec.cli:main``)."""

from inrcodec.cli.main import main

__all__ = ["main"]
