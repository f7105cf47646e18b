"""composer: storyboard -> generated ~20 s segments -> exact-length videos, with drift checks."""

__version__ = "0.1.0"
