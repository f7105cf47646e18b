"""The local generator's scene kinds, as data: one :class:`SceneKind` per kind in :data:`SCENES`.

A kind says which prompt words pick it, how its world is painted (the name of a painter in
``paint.py``), how textured its surfaces are, which moving elements live in it (drifting
particles, a flock of birds, traffic, clouds, waves, twinkling stars), the palette a low
``style_strength`` departs towards, and what it sounds like (a noise spectrum and a texture
in ``audio.py``). Also :func:`scene_kind`, which reads a kind from a prompt.

What does not live here: the code that paints, moves or sounds (``paint.py``, ``world.py``,
``audio.py``); that code reads these tables and has no per-kind branches of its own.

Sizes and speeds are in pixels (per second) at 720p; the generator scales them to the frame
height. Order matters twice over: the order of :data:`SCENES` settles ties between prompt
words and is part of every world's random seed, and each kind's elements draw their random
numbers in the order the world sets them up (particles, flock, traffic, clouds, waves), so
changing either changes every frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Particles:
    """A cloud of small drifting dots (snowflakes, embers, leaves, fireflies, dust, blobs)."""

    count: int
    vx: tuple[float, float]  # range of horizontal speeds, px/s at 720p
    vy: tuple[float, float]  # range of vertical speeds (positive: down)
    radius: tuple[float, float]  # range of radii, px at 720p
    color: str | None  # "#rrggbb"; None: one light colour drawn at random per world
    sway: float = 0.0  # amplitude of the side-to-side sway, px at 720p
    flicker: float = 0.0  # 0: steady, 1: blinks fully off
    band: tuple[float, float] = (0.0, 1.0)  # where they start, as fractions of the canvas height


@dataclass(frozen=True)
class Flock:
    """A few birds crossing the sky together, between heights ``lo`` and ``hi`` (canvas fractions)."""

    count: int
    lo: float
    hi: float


@dataclass(frozen=True)
class Lane:
    """One lane of traffic: its direction, where it lies below the road line, its lights' BGR colour."""

    direction: int  # +1: left to right
    offset: float  # in lane widths below the road line
    lights: tuple[float, float, float]


@dataclass(frozen=True)
class Lowpass:
    """A noise-spectrum term ``gain / (1 + (f / corner)**2)``: a rumble below ``corner`` Hz."""

    gain: float
    corner: float


@dataclass(frozen=True)
class Band:
    """A noise-spectrum term ``gain * exp(-(ln(f / centre) / width)**2 / 2)``: a hiss around ``centre`` Hz."""

    gain: float
    centre: float
    width: float


@dataclass(frozen=True)
class Sound:
    """A kind's ambience: the shape of its noise (terms summed in order) and a texture from ``audio.py``."""

    spectrum: tuple[Lowpass | Band, ...]
    texture: str  # surf | wind | hum | birdsong | crackle | crickets | drone


@dataclass(frozen=True)
class SceneKind:
    """Everything that makes one kind of scene what it is; read by the painter, world and audio."""

    name: str
    words: frozenset[str]  # prompt words that pick this kind
    painter: str  # the painter in paint.PAINTERS
    palette: tuple[str, str, str]  # dark, middle, light stops a departure maps towards
    sound: Sound
    mottle: float = 0.04  # surface texture amplitude (fraction of the pixel value)
    particles: tuple[Particles, ...] = ()
    flock: Flock | None = None
    traffic: tuple[Lane, ...] = ()  # cars on the painted road (layout "road" and "lane")
    clouds: int = 0  # cloud sprites drifting in front of the sky
    waves: int = 0  # crests bobbing on the painted sea (layout "horizon", "sea_color", "foam")
    twinkle: bool = False  # painted stars (layout "stars") twinkle, and meteors cross them
    bird_color: tuple[float, float, float] = (30.0, 30.0, 35.0)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The wind-like ambience several open landscapes share.
_WIND = Sound((Band(1.0, 380.0, 0.7),), "wind")

#: The scene kinds, in their fixed order (see the module docstring). ``abstract`` is the kind of
#: a prompt no word matches.
SCENES: dict[str, SceneKind] = {
    kind.name: kind
    for kind in (
        SceneKind(
            "city",
            _words(
                "city cities skyline skyscraper skyscrapers street streets urban downtown building "
                "buildings traffic town metropolis neon rooftop rooftops"
            ),
            painter="city",
            palette=("#1a1f3a", "#c26a2e", "#ffd9a0"),
            sound=Sound((Lowpass(1.0, 160.0), Lowpass(0.05, 2500.0)), "hum"),
            traffic=(Lane(1, 0.6, (200.0, 235.0, 255.0)), Lane(-1, 1.5, (40.0, 40.0, 230.0))),
        ),
        SceneKind(
            "sea",
            _words(
                "sea seas ocean oceans wave waves beach shore surf coast coastline tide harbor "
                "harbour lake seaside bay"
            ),
            painter="sea",
            palette=("#06243a", "#1f7a8c", "#d8f3f0"),
            sound=Sound((Lowpass(1.0, 420.0), Lowpass(0.08, 4000.0)), "surf"),
            mottle=0.07,
            flock=Flock(3, 0.15, 0.4),
            waves=10,
        ),
        SceneKind(
            "snow",
            _words("snow snowy snowfall winter ice icy frozen blizzard arctic snowflakes"),
            painter="snow",
            palette=("#2b3440", "#9fb4c8", "#ffffff"),
            sound=_WIND,
            mottle=0.05,
            particles=(
                Particles(45, vx=(-6, 6), vy=(20, 35), radius=(1.0, 2.0), color="#d8dee6", sway=8),
                Particles(12, vx=(-10, 10), vy=(45, 65), radius=(2.0, 3.0), color="#e8ecf2", sway=14),
            ),
        ),
        SceneKind(
            "forest",
            _words("forest forests tree trees woods woodland pine pines jungle meadow grass garden leaves"),
            painter="forest",
            palette=("#0f2414", "#4f7d2c", "#e3efb0"),
            sound=Sound((Band(0.5, 2500.0, 0.8), Lowpass(0.3, 300.0)), "birdsong"),
            particles=(
                # Falling leaves, then fireflies low among the trees.
                Particles(45, vx=(5, 25), vy=(12, 30), radius=(1.5, 3.0), color="#c9a23a", sway=25),
                Particles(
                    40,
                    vx=(-4, 4),
                    vy=(-4, 4),
                    radius=(0.8, 1.6),
                    color="#fff4c0",
                    sway=10,
                    flicker=0.5,
                    band=(0.5, 0.95),
                ),
            ),
            flock=Flock(5, 0.12, 0.35),
        ),
        SceneKind(
            "desert",
            _words("desert deserts dune dunes sand sandy sahara canyon arid"),
            painter="desert",
            palette=("#3a1f0e", "#c8873d", "#fbe3b0"),
            sound=_WIND,
            mottle=0.07,
            particles=(
                # Sand blown low over the dunes.
                Particles(
                    70, vx=(90, 160), vy=(-6, 6), radius=(0.8, 1.5), color="#e9cfa0", sway=6, band=(0.55, 1.0)
                ),
            ),
            flock=Flock(2, 0.15, 0.3),
        ),
        SceneKind(
            "fire",
            _words("fire fires flame flames campfire ember embers sunset dusk volcano lava blaze burning"),
            painter="fire",
            palette=("#1a0500", "#d0401a", "#ffd060"),
            sound=Sound((Lowpass(1.0, 250.0),), "crackle"),
            particles=(
                # Embers rising.
                Particles(
                    90,
                    vx=(-10, 10),
                    vy=(-70, -35),
                    radius=(1.2, 2.6),
                    color="#ffa040",
                    sway=18,
                    flicker=0.6,
                    band=(0.3, 1.0),
                ),
            ),
            flock=Flock(4, 0.25, 0.45),
        ),
        SceneKind(
            "night",
            _words("night nights stars starry moon moonlit midnight galaxy milky"),
            painter="night",
            palette=("#03040f", "#23306b", "#b8c4ff"),
            sound=Sound((Band(0.4, 300.0, 0.6),), "crickets"),
            mottle=0.03,
            particles=(
                # Fireflies over the dark ground.
                Particles(
                    45,
                    vx=(-6, 6),
                    vy=(-5, 5),
                    radius=(1.2, 2.2),
                    color="#d8ff7a",
                    sway=15,
                    flicker=0.9,
                    band=(0.78, 0.98),
                ),
            ),
            twinkle=True,
            bird_color=(10.0, 10.0, 10.0),
        ),
        SceneKind(
            "sky",
            _words("sky skies cloud clouds cloudy birds bird flying aerial heaven sunrise"),
            painter="sky",
            palette=("#20407a", "#6fa8dc", "#fff6e0"),
            sound=_WIND,
            mottle=0.05,
            flock=Flock(6, 0.15, 0.4),
            clouds=3,
        ),
        SceneKind(
            "abstract",
            frozenset(),
            painter="abstract",
            palette=("#2a0f3a", "#b0407a", "#ffe0f0"),
            sound=Sound((Band(1.0, 200.0, 0.5),), "drone"),
            particles=(Particles(28, vx=(-20, 20), vy=(-15, 15), radius=(6, 16), color=None, sway=30),),
        ),
    )
}

KINDS = tuple(SCENES)


def scene(kind: str) -> SceneKind:
    """The scene kind called ``kind`` (ValueError for a name that is not one)."""
    try:
        return SCENES[kind]
    except KeyError:
        raise ValueError(f"{kind!r} is not a scene kind of the local generator") from None


def scene_kind(prompt: str) -> str:
    """The scene kind a prompt describes: most matching words wins, ties go to the earlier kind
    in :data:`KINDS`, and ``abstract`` when no word matches."""
    words = re.findall(r"[a-z]+", prompt.lower())
    scores = {name: sum(w in kind.words for w in words) for name, kind in SCENES.items()}
    best = max(scores.values(), default=0)
    if best == 0:
        return "abstract"
    return next(name for name in KINDS if scores[name] == best)
