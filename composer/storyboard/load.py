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
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from composer import imaging
from composer.errors import Issue, MediaError, StoryboardError
from composer.files import NotReadable, read_regular
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


#: The largest storyboard (or plan.json) read; a long storyboard is a few tens of kilobytes.
MAX_FILE_BYTES = 2 * 1024 * 1024
#: How deeply mappings and lists may nest; a storyboard needs four levels.
MAX_DEPTH = 32
#: Values (mappings, lists and scalars) a file may stand for, counting what aliases expand to.
MAX_VALUES = 200_000
#: Values that aliases (``*name``) may expand to in all: enough to share a few settings, far too
#: few for an "alias bomb" (nine anchors of nine aliases each stand for 387 million values).
MAX_ALIAS_VALUES = 10_000
#: The longest image path accepted (file systems allow 4096 bytes in a path, 255 in a name).
MAX_IMAGE_NAME = 1024

#: Fields whose text may run over several lines; everywhere else a control character is refused.
_MULTILINE_FIELDS = frozenset({"prompt", "negative_prompt", "style"})
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"

# YAML 1.1 reads a plain ``0x0`` or ``0x720`` as a hexadecimal number; in a resolution it
# can only mean width x height, so it is kept as the text the user wrote.
_HEX_LIKE_SIZE = re.compile(r"^0[xX][0-9]+$")


def issue_at(file: str, positions: dict[Loc, Position], loc: Loc, message: str) -> Issue:
    """An issue at the line where ``loc`` (or the nearest part of it) was written."""
    return _issue(file, positions, loc, message)


class _Refused(Exception):
    """A value the loader will not build; ``mark`` is where it was written."""

    def __init__(self, loc: Loc, mark: yaml.Mark | None, message: str) -> None:
        super().__init__(message)
        self.loc, self.mark, self.message = loc, mark, message


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe composer with a depth limit checked before each nested node is composed.

    PyYAML composes recursively, so 20000 nested ``[`` ended in a RecursionError (a traceback);
    the limit stops at the first level too many, with that level's position.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused((), mark, f"nested more than {MAX_DEPTH} levels deep; a storyboard needs four")
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


class _Builder:
    """Turns composed nodes into Python values, recording positions, within the budgets above."""

    def __init__(self, positions: dict[Loc, Position]) -> None:
        self.positions = positions
        self.values = 0
        self.alias_values = 0
        self.seen: set[int] = set()
        self.path: set[int] = set()

    def build(self, node: yaml.Node, loc: Loc, *, aliased: bool = False, depth: int = 0) -> Any:
        """The value of ``node``; ``aliased``: reached through an alias (counted in its budget)."""
        if id(node) in self.path:
            raise _Refused(
                loc,
                node.start_mark,
                "an alias here refers to the value that holds it (a loop); write the value out",
            )
        # A node met a second time was reached through an alias: it and everything under it
        # count against the alias budget, so an alias bomb stops after a few thousand values.
        aliased = aliased or id(node) in self.seen
        self.seen.add(id(node))
        self.values += 1
        if aliased:
            self.alias_values += 1
            if self.alias_values > MAX_ALIAS_VALUES:
                raise _Refused(
                    loc,
                    node.start_mark,
                    f"aliases (*name) expand to more than {MAX_ALIAS_VALUES} values; "
                    "write the shared settings out instead of nesting aliases",
                )
        if self.values > MAX_VALUES:
            raise _Refused(
                loc,
                node.start_mark,
                f"the file stands for more than {MAX_VALUES} values; is it the right file?",
            )
        if depth > MAX_DEPTH:
            raise _Refused(
                loc, node.start_mark, f"nested more than {MAX_DEPTH} levels deep (through aliases)"
            )
        self.positions[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            self.path.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, loc, aliased, depth)
                return [
                    self.build(item, (*loc, i), aliased=aliased, depth=depth + 1)
                    for i, item in enumerate(node.value)
                ]
            finally:
                self.path.discard(id(node))
        return _scalar(node, loc)

    def _mapping(self, node: yaml.MappingNode, loc: Loc, aliased: bool, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _key(key_node, loc)
            child = (*loc, key)
            if key in result:
                raise _Refused(child, key_node.start_mark, f"key {key!r} appears twice here; keep one")
            position = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            self.positions[child] = position
            result[key] = self.build(value_node, child, aliased=aliased, depth=depth + 1)
            # The key's position is more useful than the value's for a wrong value too.
            self.positions[child] = position
        return result


def _key(node: yaml.Node, loc: Loc) -> str:
    """A mapping key, which must be a name: merge keys, ``=`` and complex keys are refused."""
    if node.tag == _MERGE_TAG:
        raise _Refused(loc, node.start_mark, "merge keys (<<) are not supported; write the keys out in full")
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG:
        return str(node.value)
    if isinstance(node, yaml.ScalarNode):
        what = f"the key {_show(node.value)} is not a name"
    else:
        what = f"a key here is {'a mapping' if isinstance(node, yaml.MappingNode) else 'a list'}"
    raise _Refused(
        loc, node.start_mark, f"{what}; keys are names such as `scenes` or `prompt` (quote a key to keep it)"
    )


def _show(value: object, limit: int = 60) -> str:
    """``repr(value)``, shortened: a message quotes what was written, never megabytes of it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show_text(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar(node: yaml.Node, loc: Loc) -> Any:
    # Construct the value directly: serialising a lone node and loading it back breaks on
    # an empty value (``output:`` with nothing after it).
    if isinstance(node, yaml.ScalarNode) and node.style is None:
        if loc and loc[-1] == "resolution" and _HEX_LIKE_SIZE.match(node.value):
            return node.value
        if node.tag == _TIMESTAMP_TAG:
            # No storyboard field is a date, so a plain 2001-02-03 (or 2001-02-30, which YAML
            # cannot even build) can only mean the text written.
            return node.value
    try:
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
        problem = _show_text(getattr(exc, "problem", None) or str(exc))
        written = _show(getattr(node, "value", ""))
        raise _Refused(
            loc, node.start_mark, f"{written} cannot be read ({problem}); put it in quotes if it is text"
        ) from None


def _control_character(text: str, multiline: bool) -> str | None:
    """The first control character in ``text`` as ``U+XXXX``, or None (line breaks and tabs are
    allowed where ``multiline``)."""
    for char in text:
        if multiline and char in "\n\r\t":
            continue
        if unicodedata.category(char) == "Cc" or char in "\u2028\u2029":
            return f"U+{ord(char):04X}"
    return None


def _control_issues(data: Any, file: str, positions: dict[Loc, Position], loc: Loc = ()) -> list[Issue]:
    """An issue for every text holding a control character (written as an escape like ``"\\x1b"``).

    A newline in a title or an id would start a new line in an EDL, a concat listing or a
    log; only prompts and the style line may span lines.
    """
    if isinstance(data, dict):
        return [i for k, v in data.items() for i in _control_issues(v, file, positions, (*loc, k))]
    if isinstance(data, list):
        return [i for n, v in enumerate(data) for i in _control_issues(v, file, positions, (*loc, n))]
    if not isinstance(data, str):
        return []
    name = next((part for part in reversed(loc) if isinstance(part, str)), "")
    multiline = name in _MULTILINE_FIELDS
    found = _control_character(data, multiline)
    if found is None:
        return []
    allowed = (
        "only line breaks and tabs are allowed here" if multiline else "write it on one line, without escapes"
    )
    return [_issue(file, positions, loc, f"contains the control character {found}; {allowed}")]


def parse_text(text: str, file: str) -> tuple[Any, dict[Loc, Position]]:
    """Parse YAML or JSON text, returning the data and the position of every key and item."""
    positions: dict[Loc, Position] = {}
    loader: _BoundedLoader | None = None
    try:
        # Inside the try: the reader checks the first characters as it is made (found by the
        # fuzz test: a control character at the start of the file was a traceback).
        loader = _BoundedLoader(text)
        node = loader.get_single_node()
    except _Refused as refused:
        raise StoryboardError([_refused_issue(file, refused)]) from None
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow in a file (a raw control character, say).
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise StoryboardError(
            [
                Issue(
                    file,
                    line,
                    column,
                    "",
                    f"not valid YAML or JSON: character U+{exc.character:04X} is not allowed in a file"
                    if isinstance(exc.character, int)
                    else f"not valid YAML or JSON: {exc.reason}",
                )
            ]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or "cannot be parsed").strip()
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        hint = (
            " (tabs are not allowed for indentation; use spaces)"
            if "\\t" in str(exc) or "tab" in problem
            else ""
        )
        context = exc.context_mark
        if (
            exc.context
            and context is not None
            and exc.problem_mark is not None
            and context.line != exc.problem_mark.line
        ):
            # Where the unfinished construct began, e.g. an unclosed '[' two lines up.
            hint += f" ({exc.context.strip()} that started at line {context.line + 1})"
        raise StoryboardError(
            [Issue(file, line, column, "", f"not valid YAML or JSON: {problem}{hint}")]
        ) from None
    except yaml.YAMLError as exc:
        raise StoryboardError([Issue(file, None, None, "", f"not valid YAML or JSON: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise StoryboardError(
            [Issue(file, 1, 1, "", "the file is empty; a storyboard needs at least `scenes:`")]
        )
    try:
        data = _Builder(positions).build(node, ())
    except _Refused as refused:
        raise StoryboardError([_refused_issue(file, refused)]) from None
    return data, positions


def _refused_issue(file: str, refused: _Refused) -> Issue:
    mark = refused.mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
    return Issue(file, line, column, format_loc(refused.loc), refused.message)


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
            f"{_show(value)} is not a usable scene id; use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"expected a mapping of keys here (got {_show(value)}); leave the key out to use the defaults"
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{msg} (got the number {_show(value)}; put it in quotes)"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "literal_error"}:
        msg += f" (got {_show(value)})"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        msg += f" (got {_show(value)})"
    return msg


def validate_data(data: Any, file: str, positions: dict[Loc, Position]) -> Storyboard:
    """Turn parsed data into a Storyboard, or raise StoryboardError with every located issue."""
    if not isinstance(data, dict):
        raise StoryboardError(
            [
                Issue(
                    file,
                    1,
                    1,
                    "",
                    "the top level must be a mapping with `scenes:` (and optional output/generation)",
                )
            ]
        )
    issues: list[Issue] = _control_issues(data, file, positions)
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
            issue = _issue(file, positions, loc, message)
            if not any(i.field == issue.field for i in issues):  # a control character said it already
                issues.append(issue)
        raise StoryboardError(issues) from None
    if issues:
        raise StoryboardError(issues)
    return storyboard


def _check_images(
    storyboard: Storyboard, base_dir: Path, file: str, positions: dict[Loc, Position]
) -> tuple[Storyboard, list[Issue]]:
    issues: list[Issue] = []
    scenes = list(storyboard.scenes)
    for index, scene in enumerate(scenes):
        if scene.image is None:
            continue
        loc: Loc = ("scenes", index, "image")
        problem = _image_name_problem(scene.image)
        if problem is not None:
            issues.append(_issue(file, positions, loc, problem))
            continue
        path = base_dir / scene.image
        try:
            found = path.is_file() or path.exists()
        except (OSError, ValueError) as exc:  # a name too long for the file system
            reason = getattr(exc, "strerror", None) or str(exc)
            issues.append(
                _issue(file, positions, loc, f"image {_show(scene.image)} cannot be looked up ({reason})")
            )
            continue
        if not found:
            issues.append(
                _issue(
                    file,
                    positions,
                    loc,
                    f"image {_show(scene.image)} not found (looked for {_show(str(path.resolve()), 200)}); "
                    "paths are relative to the storyboard file",
                )
            )
            continue
        try:
            imaging.probe_image(path)
        except MediaError as exc:
            issues.append(_issue(file, positions, loc, str(exc)))
            continue
        scenes[index] = scene.model_copy(update={"image": str(path.resolve())})
    return storyboard.model_copy(update={"scenes": scenes}), issues


def _image_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an image path, or None."""
    if "\0" in name:
        return "the image path contains a NUL character; write the file's name"
    if len(name) > MAX_IMAGE_NAME:
        return f"the image path is {len(name)} characters long; the limit is {MAX_IMAGE_NAME}"
    if any(len(part.encode("utf-8")) > 255 for part in Path(name).parts):
        return "a name in the image path is longer than 255 bytes, which file systems do not allow"
    return None


def load_storyboard(path: str | Path) -> LoadedStoryboard:
    """Read, parse and check a storyboard file; image paths come back absolute.

    Raises :class:`StoryboardError` listing every problem found, each with its line.
    """
    path = Path(path)
    file = str(path)
    raw = read_input(path, "storyboard")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise StoryboardError(
            [Issue(file, line, column, "", f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")]
        ) from None
    if path.suffix.lower() == ".json":
        try:
            json.loads(text)
        except RecursionError:
            pass  # nested too deeply for json: the YAML parser below refuses it at its line
        except json.JSONDecodeError as exc:
            raise StoryboardError(
                [Issue(file, exc.lineno, exc.colno, "", f"not valid JSON: {exc.msg}")]
            ) from None
    data, positions = parse_text(text, file)
    storyboard = validate_data(data, file, positions)
    storyboard, issues = _check_images(storyboard, path.parent.resolve(), file, positions)
    if issues:
        raise StoryboardError(issues)
    return LoadedStoryboard(storyboard, path, positions)


def read_input(path: Path, what: str) -> bytes:
    """The bytes of an input file (a storyboard, a plan.json), or StoryboardError saying why not.

    Only a regular file of at most :data:`MAX_FILE_BYTES` is read: a FIFO would block the
    read forever, a device (``/dev/zero``) would never end.
    """
    try:
        return read_regular(path, max_bytes=MAX_FILE_BYTES, what=what)
    except NotReadable as exc:
        raise StoryboardError([Issue(str(path), None, None, "", str(exc))]) from None


def issues_text(issues: Iterable[Issue]) -> str:
    return "\n".join(str(i) for i in issues)
