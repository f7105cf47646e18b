"""Storyboard stage: the v1 format (``model.py``) and reading it with located errors (``load.py``)."""

from composer.storyboard.load import LoadedStoryboard, load_storyboard
from composer.storyboard.model import Scene, Storyboard

__all__ = ["LoadedStoryboard", "Scene", "Storyboard", "load_storyboard"]
