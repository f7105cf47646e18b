"""Compose stage: normalise takes and join them into exact-length outputs with ffmpeg."""
