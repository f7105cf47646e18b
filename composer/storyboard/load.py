"""Read a storyboard file (YAML, or JSON) into a :class:`Storyboard`, or say exactly where it is wrong.

Every problem becomes an :class:`~composer.errors.Issue` with ``file:line:column``, the field
path (``scenes[2].duration_s``), what is wrong and what is allowed. All problems of a file
are reported at once. What lives here: parsing with positions, mapping pydantic errors back
to lines, and the checks that need the disk (reference images). What does not: planning
checks, which belong to ``plan/`` and are located through :meth:`LoadedStoryboard.locate`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from composer import imaging
from composer.errors import Issue, MediaError, StoryboardError
from composer.storyboard.model import Storyboard, duplicate_ids, duplicate_message

Position = tuple[int, int]
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedStoryboard:
    """A validated storyboard with the file it came from and where each field was written."""

    storyboard: Storyboard
    path: Path
    positions: dict[Loc, Position] = field(default_factory=dict, repr=False)

    def locate(self, field_path: str, message: str) -> Issue:
        """An issue anchored at ``field_path`` (for example ``scenes[1].duration_s``)."""
        return _issue(str(self.path), self.positions, parse_field_path(field_path), message)


def format_loc(loc: Sequence[str | int]) -> str:
    """``("scenes", 2, "duration_s")`` -> ``scenes[2].duration_s``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_field_path(text: str) -> Loc:
    """The inverse of :func:`format_loc`."""
    loc: list[str | int] = []
    for chunk in text.replace("]", "").split("."):
        name, *indices = chunk.split("[")
        if name:
            loc.append(name)
        loc.extend(int(i) for i in indices)
    return tuple(loc)


def _issue(file: str, positions: dict[Loc, Position], loc: Loc, message: str) -> Issue:
    # Point at the deepest part of the path that was written in the file: a missing
    # key is reported where its parent mapping starts.
    for depth in range(len(loc), -1, -1):
        pos = positions.get(tuple(loc[:depth]))
        if pos is not None:
            return Issue(file, pos[0], pos[1], format_loc(loc), message)
    return Issue(file, None, None, format_loc(loc), message)


class _DuplicateKey(Exception):
    def __init__(self, loc: Loc, node: yaml.Node) -> None:
        self.loc, self.node = loc, node


# YAML 1.1 reads a plain ``0x0`` or ``0x720`` as a hexadecimal number; in a resolution it
# can only mean width x height, so it is kept as the text the user wrote.
_HEX_LIKE_SIZE = re.compile(r"^0[xX][0-9]+$")


def _scalar(node: yaml.Node, loc: Loc) -> Any:
    # Construct the value directly: serialising a lone node and loading it back breaks on
    # an empty value (``output:`` with nothing after it).
    if (
        loc
        and loc[-1] == "resolution"
        and isinstance(node, yaml.ScalarNode)
        and node.style is None
        and _HEX_LIKE_SIZE.match(node.value)
    ):
        return node.value
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def _to_python(node: yaml.Node, loc: Loc, positions: dict[Loc, Position]) -> Any:
    positions[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if key_node.tag == "tag:yaml.org,2002:str" else _scalar(key_node, ())
            if key in result:
                raise _DuplicateKey((*loc, key if isinstance(key, (str, int)) else str(key)), key_node)
            child = (*loc, key) if isinstance(key, (str, int)) else (*loc, str(key))
            positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _to_python(value_node, child, positions)
            # The key's position is more useful than the value's for a wrong value too.
            positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*loc, i), positions) for i, item in enumerate(node.value)]
    return _scalar(node, loc)


def parse_text(text: str, file: str) -> tuple[Any, dict[Loc, Position]]:
    """Parse YAML or JSON text, returning the data and the position of every key and item."""
    positions: dict[Loc, Position] = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or "cannot be parsed").strip()
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        hint = " (tabs are not allowed for indentation; use spaces)" if "\\t" in str(exc) or "tab" in problem else ""
        context = exc.context_mark
        if exc.context and context is not None and exc.problem_mark is not None and context.line != exc.problem_mark.line:
            # Where the unfinished construct began, e.g. an unclosed '[' two lines up.
            hint += f" ({exc.context.strip()} that started at line {context.line + 1})"
        raise StoryboardError(
            [Issue(file, line, column, "", f"not valid YAML or JSON: {problem}{hint}")]
        ) from None
    except yaml.YAMLError as exc:
        raise StoryboardError([Issue(file, None, None, "", f"not valid YAML or JSON: {exc}")]) from None
    if node is None:
        raise StoryboardError([Issue(file, 1, 1, "", "the file is empty; a storyboard needs at least `scenes:`")])
    try:
        data = _to_python(node, (), positions)
    except _DuplicateKey as dup:
        mark = dup.node.start_mark
        key = dup.loc[-1]
        raise StoryboardError(
            [Issue(file, mark.line + 1, mark.column + 1, format_loc(dup.loc), f"key {key!r} appears twice here; keep one")]
        ) from None
    return data, positions


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys the model at ``loc`` accepts, for 'unknown key' messages."""
    model: type[BaseModel] | None = Storyboard
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        info = model.model_fields.get(part)
        if info is None:
            return []
        annotation = info.annotation
        inner = getattr(annotation, "__args__", None)
        candidates = [annotation, *(inner or ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return sorted(model.model_fields) if model else []


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key {loc[-1]!r}{guess}; allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return "this field is required"
    if kind == "too_short" and loc == ("scenes",):
        return "the storyboard has no scenes; add at least one (each with id, prompt and duration_s)"
    if kind == "string_pattern_mismatch" and loc[-1:] == ("id",):
        return (
            f"{value!r} is not a usable scene id; use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"expected a mapping of keys here (got {value!r}); leave the key out to use the defaults"
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{msg} (got the number {value!r}; put it in quotes)"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "literal_error"}:
        msg += f" (got {value!r})"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        msg += f" (got {value!r})"
    return msg


def validate_data(data: Any, file: str, positions: dict[Loc, Position]) -> Storyboard:
    """Turn parsed data into a Storyboard, or raise StoryboardError with every located issue."""
    if not isinstance(data, dict):
        raise StoryboardError(
            [Issue(file, 1, 1, "", "the top level must be a mapping with `scenes:` (and optional output/generation)")]
        )
    issues: list[Issue] = []
    scenes = data.get("scenes")
    if isinstance(scenes, list):
        # Checked here as well as in the model so that duplicates are reported together with
        # any other problem (the model's own check only runs once every field is valid).
        ids = [s.get("id") for s in scenes if isinstance(s, dict)]
        if all(isinstance(i, str) for i in ids) and len(ids) == len(scenes):
            for index, scene_id in duplicate_ids([str(i).strip() for i in ids]):
                issues.append(_issue(file, positions, ("scenes", index, "id"), duplicate_message(scene_id)))
    try:
        storyboard = Storyboard.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            message = _message(dict(error))
            if not loc and "duplicate scene id" in message:
                # The model says "scenes[N].id: ..."; anchor it at that id's line.
                path, _, message = message.partition(": ")
                issue = _issue(file, positions, parse_field_path(path), message)
                if issue not in issues:
                    issues.append(issue)
                continue
            issues.append(_issue(file, positions, loc, message))
        raise StoryboardError(issues) from None
    if issues:
        raise StoryboardError(issues)
    return storyboard


def _check_images(storyboard: Storyboard, base_dir: Path, file: str, positions: dict[Loc, Position]) -> tuple[Storyboard, list[Issue]]:
    issues: list[Issue] = []
    scenes = list(storyboard.scenes)
    for index, scene in enumerate(scenes):
        if scene.image is None:
            continue
        loc: Loc = ("scenes", index, "image")
        path = (base_dir / scene.image).resolve()
        if not path.is_file():
            issues.append(
                _issue(file, positions, loc, f"image {scene.image!r} not found (looked for {path}); paths are relative to the storyboard file")
            )
            continue
        try:
            imaging.probe_image(path)
        except MediaError as exc:
            issues.append(_issue(file, positions, loc, str(exc)))
            continue
        scenes[index] = scene.model_copy(update={"image": str(path)})
    return storyboard.model_copy(update={"scenes": scenes}), issues


def load_storyboard(path: str | Path) -> LoadedStoryboard:
    """Read, parse and check a storyboard file; image paths come back absolute.

    Raises :class:`StoryboardError` listing every problem found, each with its line.
    """
    path = Path(path)
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StoryboardError([Issue(file, None, None, "", "file not found")]) from None
    except OSError as exc:
        raise StoryboardError([Issue(file, None, None, "", f"cannot be read: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StoryboardError([Issue(file, None, None, "", f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")]) from None
    if path.suffix.lower() == ".json":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise StoryboardError([Issue(file, exc.lineno, exc.colno, "", f"not valid JSON: {exc.msg}")]) from None
    data, positions = parse_text(text, file)
    storyboard = validate_data(data, file, positions)
    storyboard, issues = _check_images(storyboard, path.parent.resolve(), file, positions)
    if issues:
        raise StoryboardError(issues)
    return LoadedStoryboard(storyboard, path, positions)


def issues_text(issues: Iterable[Issue]) -> str:
    return "\n".join(str(i) for i in issues)
