"""The local backend: an embedded procedural generator (no network, no key).

Declares capabilities in the same form as the API backends (Veo 3.1-like: 4/6/8 s bases,
7 s extensions from an 8 s base) so the planner treats it exactly like them, and the
:class:`LocalBackend` that renders with the generator in this package and encodes with
``composer.ffmpeg``. What does not live here: retries and caching (``jobs/``), or the
pictures and sounds themselves, which are pure functions of a JSON state:

- ``scenes.py``: the scene kinds as data (prompt words, painter, elements, palette, sound);
- ``state.py``: the clip state (segments, drift, camera, knobs) and :class:`ClipState`;
- ``paint.py``: drawing primitives, one painter per kind, surface texture;
- ``world.py``: a world's canvas and its moving elements;
- ``render.py``: :class:`Renderer`, camera over canvas, departure and drift, per frame;
- ``audio.py``: the ambient sound.
"""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from composer import imaging
from composer.backends.base import Capabilities, ClipInfo, GenerationRequest, TakeInput
from composer.backends.local.render import Renderer
from composer.backends.local.state import STATE_VERSION, continue_state, extend_state, new_state
from composer.errors import TerminalError
from composer.ffmpeg import FrameWriter, concat_copy, extract_frame
from composer.files import file_sha256
from composer.timecode import fps_text, parse_fps, to_frames

CAPABILITIES = Capabilities(
    name="local",
    base_durations_s=(4.0, 6.0, 8.0),
    extension_step_s=7.0,
    extendable_base_durations_s=(8.0,),
    max_extensions=20,
    max_total_s=148.0,
    native_fps=None,
    resolutions=None,
    extension_resolutions=None,
    first_frame=True,
    last_frame=False,
    max_reference_images=0,
    audio=True,
    models={"fast": "local-fast", "quality": "local-quality"},
    price_per_s={},
    needs_key=False,
    # The image-guidance knobs: the generator honours both (state.py, render.py).
    style_strength=True,
    motion_intensity=True,
)


class LocalBackend:
    """The embedded generator behind the Backend protocol: renders, encodes, reports.

    ``generate`` renders a fresh clip (from a prompt, a storyboard image, or a frame of an
    earlier local take), honouring the request's ``style_strength`` (how far the take may
    depart from its first frame's palette and framing) and ``motion_intensity`` (how fast the
    camera and the elements move); ``extend`` renders the next seconds of a clip and joins them to the
    parent by stream copy, so ``dest`` holds the whole lengthened clip, as Veo does. Every
    part is encoded straight into the output encoding (composer's shared x264 settings, IDR
    frames at the take frames listed in ``options.keyframes``), so an accepted take goes into
    its output by stream copy, with no normalising pass.
    """

    capabilities = CAPABILITIES

    def __init__(self, *, intermediate: bool = False) -> None:
        # The simulator stands in for a service whose clips are normalised anyway (they never
        # carry composer's encoding), so it encodes as fast as x264 can, at a lower CRF.
        self._encoding: dict[str, Any] = {"preset": "ultrafast", "crf": 17} if intermediate else {}

    def generate(self, request: GenerationRequest, inputs: TakeInput, dest: Path) -> ClipInfo:
        fps = parse_fps(request.fps)
        frames = to_frames(request.duration_s, fps)
        if frames < 1:
            raise TerminalError(f"a {request.duration_s} s clip has no frames at {fps_text(fps)} fps")
        drift = _drift_option(request)
        state, image = None, None
        if inputs.first_frame_state is not None and request.first_frame is not None:
            state, image = self._continuation(request, inputs.first_frame_state, frames, drift)
        if state is None:
            source = None
            if inputs.first_frame_path is not None:
                image = imaging.read_image(inputs.first_frame_path)
                source = {
                    "path": str(Path(inputs.first_frame_path).resolve()),
                    "sha256": file_sha256(inputs.first_frame_path),
                }
            state = new_state(
                request.prompt,
                request.camera,
                request.seed,
                request.width,
                request.height,
                fps,
                frames,
                drift=drift,
                image=source,
                **request.knobs(),
            )
        renderer = Renderer(state, image)
        audio = renderer.audio() if request.audio else None
        keys = [k for k in _keyframes_option(request) if 0 < k < frames]
        with FrameWriter(
            dest, request.width, request.height, fps, audio=audio, keyframes=keys, **self._encoding
        ) as writer:
            for frame in renderer.frames():
                writer.write(frame)
        return self._info(state, fps, request.width, request.height, audio is not None)

    def extend(self, request: GenerationRequest, inputs: TakeInput, dest: Path) -> ClipInfo:
        parent = inputs.parent_state
        if not parent or parent.get("version") != STATE_VERSION:
            raise TerminalError(
                "the local backend can only extend clips it made itself; the parent take has no "
                "local generator state (regenerate the parent with the local backend)"
            )
        if inputs.parent_path is None or not Path(inputs.parent_path).is_file():
            raise TerminalError(f"the parent clip {inputs.parent_path} to extend is missing")
        fps = parse_fps(request.fps)
        if (parent["width"], parent["height"], parent["fps"]) != (
            request.width,
            request.height,
            fps_text(fps),
        ):
            raise TerminalError(
                f"cannot extend a {parent['width']}x{parent['height']} {parent['fps']} fps clip at "
                f"{request.width}x{request.height} {fps_text(fps)} fps; extensions keep the parent's format"
            )
        new_frames = to_frames(request.duration_s, fps)
        if new_frames < 1:
            raise TerminalError(f"an extension of {request.duration_s} s has no frames")
        state = extend_state(
            parent, new_frames, request.camera, request.seed, drift=_drift_option(request), **request.knobs()
        )
        image = self._world_image(parent, inputs.parent_path)
        renderer = Renderer(state, image)
        start = int(parent["frames"])
        audio = renderer.audio() if request.audio else None
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.stem}.") as work:
            part = Path(work) / "part.mp4"
            # The part carries no audio: the joined file gets one track rendered for its whole length.
            keys = [k - start for k in _keyframes_option(request) if start < k < start + new_frames]
            with FrameWriter(
                part, request.width, request.height, fps, keyframes=keys, **self._encoding
            ) as writer:
                for frame in renderer.frames(start):
                    writer.write(frame)
            concat_copy([Path(inputs.parent_path), part], audio, dest)
        return self._info(state, fps, request.width, request.height, audio is not None)

    def close(self) -> None:
        """Nothing to release: the generator holds no connections or processes between calls."""

    # -- helpers ---------------------------------------------------------------------------------

    def _continuation(
        self, request: GenerationRequest, earlier: dict[str, Any], frames: int, drift: float
    ) -> tuple[dict[str, Any] | None, np.ndarray | None]:
        """State and world image to continue from frame ``request.first_frame.frame`` of an earlier take.

        None when that take is not a local one in the same format; the caller then treats
        the frame as a plain image.
        """
        fps = parse_fps(request.fps)
        index = request.first_frame.frame if request.first_frame is not None else None
        same_format = (earlier.get("width"), earlier.get("height"), earlier.get("fps")) == (
            request.width,
            request.height,
            fps_text(fps),
        )
        if earlier.get("version") != STATE_VERSION or index is None or not same_format:
            return None, None
        try:
            image = self._world_image(earlier, None)
        except TerminalError:
            return None, None
        state = continue_state(
            earlier, index, request.camera, request.seed, frames, drift=drift, **request.knobs()
        )
        return state, image

    def _world_image(self, state: dict[str, Any], clip: Path | None) -> np.ndarray | None:
        """The picture an image world was painted from: its file, else the clip's birth frame."""
        source = state.get("image")
        if source is None:
            return None
        path = Path(source.get("path", ""))
        if path.is_file() and file_sha256(path) == source.get("sha256"):
            return imaging.read_image(path)
        birth = int(state.get("born", 0)) - int(state["origin"])
        if clip is not None and 0 <= birth < int(state["frames"]):
            # The image moved; its first frame is the image itself (within encode noise).
            with tempfile.TemporaryDirectory() as work:
                png = Path(work) / "birth.png"
                extract_frame(clip, Fraction(birth) / parse_fps(state["fps"]), png)
                return imaging.read_image(png)
        raise TerminalError(
            f"the image {path} this local clip was made from is gone or changed; regenerate the take"
        )

    @staticmethod
    def _info(state: dict[str, Any], fps: Fraction, width: int, height: int, has_audio: bool) -> ClipInfo:
        frames = int(state["frames"])
        return ClipInfo(
            frames=frames,
            fps=fps_text(fps),
            width=width,
            height=height,
            has_audio=has_audio,
            duration_s=float(Fraction(frames) / fps),
            state=state,
        )


def _drift_option(request: GenerationRequest) -> float:
    value = request.options.get("drift", 1.0)
    try:
        drift = float(value)
    except (TypeError, ValueError):
        raise TerminalError(f"options.drift must be a number, not {value!r}") from None
    return max(0.0, drift)


def _keyframes_option(request: GenerationRequest) -> list[int]:
    """Take frames to make IDR frames (``options.keyframes``, counted from the take's start)."""
    value = request.options.get("keyframes", [])
    if not isinstance(value, list) or not all(isinstance(k, int) and not isinstance(k, bool) for k in value):
        raise TerminalError(f"options.keyframes must be a list of frame numbers, not {value!r}")
    return value
