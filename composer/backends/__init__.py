"""Backends: one small interface (``base.py``), the embedded ``local`` generator, and a registry."""
