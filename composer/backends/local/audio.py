"""The local generator's ambient sound: overlapping blocks of spectrally shaped noise.

What lives here: :func:`ambient_audio`, which renders any span of a world's ambience, and the
sound *textures* a scene kind names (``scenes.Sound.texture``): surf swells, gusts of wind,
mains hum, birdsong, the crackle of a fire, crickets, a drone. Each block of noise is seeded
by its position in the world, so any span renders identically to the same span of a longer
rendering (that is what keeps an extended clip's track continuous).

What does not: which kind sounds how (the spectrum terms and texture names in ``scenes.py``),
or mixing the sound into a file (the backend and ``composer.ffmpeg``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from composer.backends.local.scenes import KINDS, Band, Lowpass, scene
from composer.timecode import AUDIO_RATE

_BLOCK = 1 << 15
_HOP = _BLOCK // 2
_WINDOW = np.sin(np.pi * (np.arange(_BLOCK) + 0.5) / _BLOCK)  # sin^2 windows at 50 % overlap sum to 1


def _term(term: Lowpass | Band, f: np.ndarray) -> np.ndarray:
    if isinstance(term, Lowpass):
        return term.gain / (1.0 + (f / term.corner) ** 2)
    return term.gain * np.exp(-0.5 * (np.log(f / term.centre) / term.width) ** 2)


def _shape(kind: str) -> np.ndarray:
    """Amplitude per FFT bin: the noise colour of a kind (its spectrum terms, summed in order)."""
    f = np.fft.rfftfreq(_BLOCK, 1.0 / AUDIO_RATE)
    f = np.maximum(f, 1.0)
    first, *rest = scene(kind).sound.spectrum
    shape = _term(first, f)
    for term in rest:
        shape = shape + _term(term, f)
    shape[0] = 0.0
    return shape / math.sqrt(float(np.mean(shape**2)) * 2)


# -- textures: each adds its character to a block of shaped noise (2 x _BLOCK) whose samples sit
# at world times ``t`` (seconds), drawing any randomness from the block's own generator.


def _surf(noise: np.ndarray, t: np.ndarray, rng: np.random.Generator, seed: int) -> np.ndarray:
    # Surf: swells every 6-9 s, phase tied to world time so blocks agree.
    env = 0.3 + 0.7 * (0.5 + 0.5 * np.sin(2 * np.pi * t / 7.3 + seed % 97)) ** 2
    noise *= env
    return noise


def _wind(noise: np.ndarray, t: np.ndarray, rng: np.random.Generator, seed: int) -> np.ndarray:
    env = 0.55 + 0.3 * np.sin(2 * np.pi * t / 5.1 + seed % 89) + 0.15 * np.sin(2 * np.pi * t / 1.7)
    noise *= env
    return noise


def _hum(noise: np.ndarray, t: np.ndarray, rng: np.random.Generator, seed: int) -> np.ndarray:
    hum = 0.08 * np.sin(2 * np.pi * 60 * t) + 0.04 * np.sin(2 * np.pi * 120 * t)
    noise += hum
    return noise


def _birdsong(noise: np.ndarray, t: np.ndarray, rng: np.random.Generator, seed: int) -> np.ndarray:
    for _ in range(int(rng.integers(0, 4))):
        start = int(rng.integers(0, _BLOCK - 8000))
        length = int(rng.integers(2500, 6000))
        tt = np.arange(length) / AUDIO_RATE
        f0, f1 = rng.uniform(2500, 4200), rng.uniform(3000, 5500)
        chirp = (
            np.sin(2 * np.pi * (f0 * tt + (f1 - f0) * tt**2 * AUDIO_RATE / (2 * length)))
            * np.sin(np.pi * np.arange(length) / length) ** 2
        )
        pan = rng.uniform(0.3, 0.7)
        noise[0, start : start + length] += 0.5 * (1 - pan) * chirp
        noise[1, start : start + length] += 0.5 * pan * chirp
    return noise


def _crackle(noise: np.ndarray, t: np.ndarray, rng: np.random.Generator, seed: int) -> np.ndarray:
    clicks = np.zeros(_BLOCK)
    where = rng.integers(0, _BLOCK - 64, int(rng.integers(15, 40)))
    clicks[where] = rng.uniform(-1.5, 1.5, len(where))
    clicks = np.convolve(clicks, np.exp(-np.arange(48) / 6.0), mode="same")
    noise += clicks[None, :]
    return noise


def _crickets(noise: np.ndarray, t: np.ndarray, rng: np.random.Generator, seed: int) -> np.ndarray:
    # Crickets: a 4.4 kHz tone pulsed in trains.
    pulse = (np.sin(2 * np.pi * 14 * t) > 0.3) * (np.sin(2 * np.pi * 0.5 * t + seed % 7) > -0.2)
    noise += 0.12 * (np.sin(2 * np.pi * 4400 * t) * pulse)[None, :]
    return noise


def _drone(noise: np.ndarray, t: np.ndarray, rng: np.random.Generator, seed: int) -> np.ndarray:
    noise += (
        0.15
        * (np.sin(2 * np.pi * 110 * t) + 0.6 * np.sin(2 * np.pi * 164.8 * t))
        * (0.6 + 0.4 * np.sin(2 * np.pi * t / 6))
    )
    return noise


Texture = Callable[[np.ndarray, np.ndarray, np.random.Generator, int], np.ndarray]

TEXTURES: dict[str, Texture] = {
    "surf": _surf,
    "wind": _wind,
    "hum": _hum,
    "birdsong": _birdsong,
    "crackle": _crackle,
    "crickets": _crickets,
    "drone": _drone,
}


def _block(kind: str, seed: int, index: int, shape: np.ndarray) -> np.ndarray:
    """One windowed block (2 x _BLOCK) of ambience, starting at world sample index * _HOP."""
    rng = np.random.default_rng([seed, index & 0xFFFFFFFF, KINDS.index(kind), 0xA0D1])
    white = rng.standard_normal((2, _BLOCK))
    # Mostly common content with some width: a mid signal plus a smaller side signal.
    mid, side = white[0], white[1]
    spec = np.fft.rfft(np.stack([mid + 0.45 * side, mid - 0.45 * side]), axis=1) * shape
    noise = np.fft.irfft(spec, n=_BLOCK, axis=1) * 0.9
    t = (index * _HOP + np.arange(_BLOCK)) / AUDIO_RATE
    noise = TEXTURES[scene(kind).sound.texture](noise, t, rng, seed)
    return noise * _WINDOW


def ambient_audio(kind: str, seed: int, first: int, count: int) -> np.ndarray:
    """``count`` stereo samples of a kind's ambience from world sample ``first`` (float32, peak < 0.5)."""
    out = np.zeros((2, count + _BLOCK), dtype=np.float64)
    if count <= 0:
        return np.zeros((0, 2), dtype=np.float32)
    shape = _shape(kind)
    b0 = first // _HOP - 1
    b1 = (first + count) // _HOP + 1
    for b in range(max(b0, -1), b1 + 1):
        start = b * _HOP - first  # where the block begins in `out` (may be negative)
        block = _block(kind, seed, b, shape)
        lo, hi = max(0, start), min(count, start + _BLOCK)
        if lo < hi:
            out[:, lo:hi] += block[:, lo - start : hi - start]
    # A soft limiter keeps the level gentle and the peak below 0.5 whatever the noise does.
    level = 0.12
    mixed = 0.45 * np.tanh(out[:, :count] * level / 0.45)
    return np.ascontiguousarray(mixed.T.astype(np.float32))
