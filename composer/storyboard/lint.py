"""Prompt lint: located advice about prompts a video model is likely to handle badly.

What lives here: the rules (``prompt-short``, ``prompt-long``, ``no-motion``, ``negation``,
``conflict``, ``style-motion``, ``knob-unsupported``), their vocabularies and thresholds, and :func:`lint`, which turns a
:class:`~composer.storyboard.load.LoadedStoryboard` into :class:`LintWarning` values, each
anchored at the line of the field to change. It is pure: no files and no printing, since the
positions come from the loader. What does not live here: reading the file (``load.py``),
printing warnings and exit codes (``cli.py``), and turning warnings into errors, which only
``pipeline.validate(strict=True)`` and ``composer validate --strict`` do. A warning never
blocks a render.

The rules are heuristics over words, not a parse of English: each vocabulary below is meant to
catch the common phrasings and to stay quiet on ordinary descriptions (the shipped storyboards
lint clean). docs/storyboard.md ("Prompt lint") describes them for users.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from composer.camera import phrase_pattern
from composer.errors import Issue
from composer.storyboard.load import LoadedStoryboard
from composer.storyboard.model import KNOBS, Scene

if TYPE_CHECKING:
    from composer.backends.base import Capabilities

Rule = Literal[
    "prompt-short", "prompt-long", "no-motion", "negation", "conflict", "style-motion", "knob-unsupported"
]
RULES: tuple[Rule, ...] = (
    "prompt-short", "prompt-long", "no-motion", "negation", "conflict", "style-motion", "knob-unsupported"
)  # fmt: skip

# Under this many words (prompt as sent, style included) a prompt leaves subject, setting,
# motion or camera to chance, so the takes of one scene disagree with each other.
MIN_WORDS = 15
# Past this many words the models follow the first sentences and let later details go; the
# guide in docs/storyboard.md recommends 15-60 words, so this leaves room before warning.
MAX_WORDS = 80
# Veo's documented prompt limit (the gemini and vertex backends): the one limit composer knows,
# so it is the default for every backend; lint(token_limit=...) takes another.
PROMPT_TOKEN_LIMIT = 1024
# No tokenizer is shipped (the services use their own), so tokens are estimated both ways and
# the larger is taken: about 1.3 tokens per English word, about 4 characters per token.
TOKENS_PER_WORD = 1.3
CHARS_PER_TOKEN = 4
# Above about this style_strength a model holds the image so closely that motion is constrained
# (the seed's guide); a scene asking for large motion then gets less than it asked for.
STYLE_MOTION_LIMIT = 0.85
# A motion_intensity from here up asks for large motion by itself.
LARGE_MOTION_INTENSITY = 0.7


@dataclass(frozen=True)
class LintWarning:
    """One piece of advice: where (``issue``: file:line:column and field), which rule, what to do."""

    issue: Issue
    rule: Rule

    @property
    def message(self) -> str:
        """What is wrong and what to do about it."""
        return self.issue.message

    def as_error(self) -> Issue:
        """The warning as a located problem, for ``--strict`` (a :class:`StoryboardError` holds these)."""
        return replace(self.issue, message=f"error[{self.rule}]: {self.issue.message}")

    def __str__(self) -> str:
        # ``file:line:column: scenes[1].prompt: warning[rule]: message``, like the loader's errors.
        return str(replace(self.issue, message=f"warning[{self.rule}]: {self.issue.message}"))


# ---------------------------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------------------------


def _forms(verbs: str) -> set[str]:
    """Every regular form of each verb: drift(s/ed/ing), glide -> gliding, pan -> panning, fly -> flies.

    Over-generating is harmless (``glideed`` never occurs in a prompt); irregular forms are
    listed by hand next to the verbs.
    """
    forms: set[str] = set()
    for verb in verbs.split():
        forms |= {verb, verb + "s", verb + "es", verb + "ed", verb + "ing"}
        forms |= {verb + verb[-1] + "ing", verb + verb[-1] + "ed"}  # pan -> panning, panned
        if verb.endswith("e"):
            forms |= {verb + "d", verb[:-1] + "ing"}
        if verb.endswith("y"):
            forms |= {verb[:-1] + "ies", verb[:-1] + "ied"}
    return forms


# Camera moves, named so that a noun rarely matches ("a truck", "a crane", "railway tracks"
# and "a tilted sign" do not): they count as motion and conflict with a still camera.
_CAMERA_MOVES = {
    *(_forms("pan tilt dolly zoom") - {"tilted"}),
    "tracking", "tracking shot", "follow shot", "arc shot", "orbit shot", "orbiting shot",
    "whip pan", "whip pans", "push in", "pushes in", "pushing in", "pull back", "pulls back",
    "pulling back", "pull out", "pulls out", "pull away", "pulls away", "dolly zoom", "crane shot",
    "crane up", "crane down", "cranes up", "cranes down", "truck left", "truck right",
    "trucks left", "trucks right", "handheld", "hand held", "steadicam", "drone shot",
    "aerial shot", "flyover", "fly through", "flythrough", "fpv",
    *(f"camera {verb}" for verb in _forms(
        "move glide drift follow circle sweep rise travel fly push pull orbit track crane float"
        " descend climb swing roll"
    )),
}  # fmt: skip
# A still camera: it says what the camera does, so it satisfies `no-motion` too.
_STILL_CAMERA = {
    "static", "static shot", "static camera", "locked off", "lock off", "locked down", "tripod",
    "fixed camera", "stationary camera", "still camera", "motionless camera",
}  # fmt: skip
# Camera words that are motion, but too often a noun to call a conflict on.
_CAMERA_WORDS = {*_forms("orbit track"), "rack focus", "pedestal", "gimbal", "crane", "cranes"}
# Things moving in the picture. "rose" (a flower) and "rock" (a stone) are left out: as nouns
# they would hide a prompt that really describes nothing moving.
_SUBJECT_MOTION = {
    *_forms(
        "drift flow sway walk run rise fall fly glide roll ripple shimmer flicker swirl spin turn wave"
        " blow stir sweep float move dance jump climb descend rush race chase crash splash pour drip"
        " grow bloom sail ride drive swim crawl twist bounce shake tremble flutter billow tumble stream"
        " trickle burst emerge approach slide creep wander stroll march gallop leap dive soar hover"
        " circle rotate pulse blink nod wag sprint stride hop fade melt spill spray swing bob glitter"
        " sparkle twinkle dart whirl spiral surge churn cascade gush lift raise sink stretch unfold"
        " travel cross lean bend flap wobble scatter gather spread pass"
    ),
    "ran", "flew", "flown", "fell", "fallen", "risen", "blew", "blown", "swept", "spun", "swam",
    "rode", "drove", "sank", "sunk", "shook", "swung", "sprang", "leapt", "crept", "strode",
    "fled", "grew", "grown", "dove", "motion", "movement", "wind", "breeze", "wake", "ripples",
    "time-lapse", "timelapse", "hyperlapse",
}  # fmt: skip
_MOTION = phrase_pattern(_CAMERA_MOVES | _STILL_CAMERA | _CAMERA_WORDS | _SUBJECT_MOTION)

# Conflicts: pairs of requests that pull a clip two ways. Kept to a few that models really
# get wrong, so a warning is worth reading.
_FAST_WORDS = [
    "fast", "rapid", "rapidly", "quick", "quickly", "whip pan", "whip pans", "running", "racing",
    "races", "sprinting", "sprints", "speeding", "high-speed", "fast-paced", "chaos", "chaotic",
    "frantic", "frenetic", "hectic",
]  # fmt: skip
_FAST = phrase_pattern(_FAST_WORDS)
# Large motion: fast action, or a camera move that travels through the scene (a plain pan,
# tilt or zoom is a modest move and does not count).
_LARGE_MOTION = phrase_pattern(
    [*_FAST_WORDS, "tracking shot", "follow shot", "orbit shot", "orbiting shot", "arc shot",
     "crane shot", "drone shot", "aerial shot", "flyover", "fly through", "flythrough", "fpv",
     "handheld", "hand held", "dolly zoom", "sweeping", "swooping", "spinning", "explosion",
     "explodes", "crashing", "stampede"]
)  # fmt: skip
_DETAIL = phrase_pattern(
    ["close-up", "close-ups", "closeup", "extreme close-up", "ecu", "macro", "macro shot",
     "intricate", "intricate detail", "intricate details", "fine detail", "fine details",
     "every detail", "minute detail", "minute details"]
)  # fmt: skip
_STILL = phrase_pattern(_STILL_CAMERA)
_MOVE = phrase_pattern(_CAMERA_MOVES)
_TIMELAPSE = phrase_pattern(
    ["time-lapse", "timelapse", "time lapse", "hyperlapse", "sped up", "fast-forward"]
)
_SLOWMO = phrase_pattern(["slow motion", "slow-motion", "slowmo", "slo-mo", "slow mo"])

# Exclusions written as negations. "no" is followed by a word, but not "no longer", "no
# matter" and such; "not" counts only before a verb of showing; "never-ending" is no negation.
_NEGATION = re.compile(
    r"\b(?:no(?!\s+(?:longer|matter|doubt|sooner|less|more|end)\b)(?=\s+[^\W\d_])"
    r"|without|never(?!-)|avoid(?:s|ing)?|exclud(?:e|es|ing)"
    r"|(?:do|does|did|should|must|can|will)\s+not|(?:do|does|did|should|must|ca|wo)n['’]?t"
    r"|not\s+(?:show|shown|showing|include|included|including|visible|see|seen|appear|appearing|any))\b",
    re.IGNORECASE,
)
# Words that, shortly before a match, negate it: "no fast motion or zooms" asks for no zoom.
_NEGATORS = {"no", "not", "without", "never", "avoid", "avoiding", "nor", "don't", "dont", "don’t"}
_CLAUSE_END = re.compile(r"[.,;:!?()\[\]]")
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
# Words a quoted exclusion should not end on ("no people on the" -> "no people"), and words
# before the excluded thing itself ("don't show the sun" excludes "sun").
_TRAILING = {"a", "an", "the", "or", "and", "of", "on", "in", "at", "to", "from", "with", "any"}
_LEADING = {
    "show", "shown", "showing", "include", "included", "including", "see", "seen", "visible",
    "appear", "appearing", "have", "feature", "use", "any", "a", "an", "the", "be",
}  # fmt: skip
# Where the excluded thing ends: "no people on the beach" excludes "people".
_PLACE = {
    "on", "in", "at", "near", "around", "behind", "beside", "under", "over", "from", "with", "along",
    "across", "by", "inside", "outside", "beyond", "through", "into", "onto", "towards", "toward",
    "against", "above", "below", "anywhere", "for",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def word_count(text: str) -> int:
    """Words as a person counts them: ``close-up`` and ``don't`` are one word, ``35 mm`` two."""
    return len(_WORD.findall(text))


def estimate_tokens(text: str) -> int:
    """A rough token count: the larger of ~1.3 per word and ~1 per 4 characters."""
    return max(math.ceil(word_count(text) * TOKENS_PER_WORD), math.ceil(len(text) / CHARS_PER_TOKEN))


def _negated(text: str, start: int) -> bool:
    """True when one of the few words before ``start`` (in the same clause) negates what follows."""
    clause = _CLAUSE_END.split(text[:start])[-1]
    before = [w.lower() for w in clause.split()[-4:]]
    return any(w in _NEGATORS or w.endswith(("n't", "n’t")) for w in before)


def _affirmed(pattern: re.Pattern[str], text: str) -> str | None:
    """The first match of ``pattern`` in ``text`` that is not negated, as written."""
    for match in pattern.finditer(text):
        if not _negated(text, match.start()):
            return match.group(0)
    return None


def _exclusions(text: str) -> list[tuple[str, str]]:
    """Each negation as written with what it excludes: ("no people", "people"), ("don't show the
    sun", "sun"), ("no cars or buses", "cars, buses"); the thing is "" when there is none to name."""
    found = []
    for match in _NEGATION.finditer(text):
        rest = _CLAUSE_END.split(text[match.end() :])[0].split()[:4]
        rest = rest[: next((i for i, word in enumerate(rest) if word.lower() in _PLACE), len(rest))]
        while rest and rest[-1].lower() in _TRAILING:
            rest.pop()
        phrase = " ".join([*match.group(0).split(), *rest])
        thing = list(rest)
        while thing and thing[0].lower() in _LEADING:
            thing.pop(0)
        if thing[:1] == ["one"]:  # "no one around" excludes people, not "one"
            thing = ["people"]
        found.append((phrase, re.sub(r"\s+(?:or|and|nor)\s+", ", ", " ".join(thing))))
    return found


def _quoted(items: Iterable[str]) -> str:
    return ", ".join(f"'{item}'" for item in items)


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


def _length(sent: str, style: str, token_limit: int) -> tuple[Rule, str] | None:
    words = word_count(sent)
    style_words = word_count(style)
    counted = f"{words} words" + (f", {style_words} of them from `style`" if style_words else "")
    tokens = estimate_tokens(sent)
    if tokens > token_limit:
        return (
            "prompt-long",
            f"the prompt as sent ({counted}) is about {tokens} tokens, past Veo's {token_limit}-token "
            f"limit, so the service refuses or cuts it; shorten it to the subject, motion and camera "
            f"(under {MAX_WORDS} words) or split the scene in two",
        )
    if words > MAX_WORDS:
        return (
            "prompt-long",
            f"the prompt as sent is {counted}; past about {MAX_WORDS} words models follow the first "
            "sentences and drop later details; keep the subject, its motion and the camera move "
            "(15-60 words) and split anything more into another scene",
        )
    if words < MIN_WORDS:
        return (
            "prompt-short",
            f"the prompt as sent is only {counted}; the model invents the rest, so takes of this scene "
            f"disagree; describe the subject, the setting, what moves and the camera (at least "
            f"{MIN_WORDS} words, 15-60 works well)",
        )
    return None


def _no_motion(sources: dict[str, str]) -> str | None:
    if any(_affirmed(_MOTION, text) for text in sources.values()):
        return None
    return (
        "nothing in the prompt or `camera:` says what moves, so the model makes a nearly still clip "
        "or picks a motion at random; name the motion in the picture (waves roll in, leaves sway) "
        "and a camera move (slow pan left, static shot), or set `camera:` for this scene"
    )


def _conflicts(sources: dict[str, str]) -> list[tuple[str, set[str]]]:
    """(message, sources involved) for each conflict; ``sources`` maps camera/prompt/style to text."""
    checks = [
        (
            _FAST,
            _DETAIL,
            "{a} asks for fast motion and {b} for a detailed close-up; fast movement blurs the detail "
            "a close-up is for and the model settles for neither; slow the motion (slow motion, a "
            "gentle push in) or widen the shot",
        ),
        (
            _STILL,
            _MOVE,
            "{a} asks for a still camera and {b} for a moving one; the model picks one at random, and "
            "a shot whose `camera:` says static is checked for camera drift; keep one",
        ),
        (
            _TIMELAPSE,
            _SLOWMO,
            "{a} speeds time up and {b} slows it down; ask for one of them",
        ),
    ]
    found = []
    for first, second, template in checks:
        a = [(name, hit) for name, text in sources.items() if (hit := _affirmed(first, text))]
        b = [(name, hit) for name, text in sources.items() if (hit := _affirmed(second, text))]
        if not a or not b:
            continue
        # A conflict inside the style line alone is not linted: the style is checked for negations only.
        involved = {a[0][0], b[0][0]}
        if involved == {"style"}:
            continue
        found.append(
            (
                template.format(a=f"'{a[0][1]}' ({_where(a[0][0])})", b=f"'{b[0][1]}' ({_where(b[0][0])})"),
                involved,
            )
        )
    return found


def _where(source: str) -> str:
    return {"camera": "in `camera:`", "prompt": "in the prompt", "style": "in `style`"}[source]


def _negation_message(exclusions: list[tuple[str, str]], scene: Scene | None) -> str:
    things = ", ".join(dict.fromkeys(thing for _, thing in exclusions if thing)) or "what to leave out"
    if scene is None:
        move = f"or put '{things}' in each scene's `negative_prompt` (the style line has none of its own)"
    elif scene.negative_prompt:
        move = f"or add '{things}' to this scene's `negative_prompt`"
    else:
        move = f"or give this scene `negative_prompt: {things}`"
    return (
        f"{_quoted(phrase for phrase, _ in exclusions)} phrases an exclusion as a negation, and video "
        f"models tend to show what a negation names; describe what is there instead (an empty street, "
        f"a clear sky) {move}"
    )


def _style_motion(scene: Scene, sources: dict[str, str], knobs: dict[str, float]) -> str | None:
    """The seed's warning when a high style_strength meets a scene that asks for large motion."""
    strength = knobs.get("style_strength")
    if strength is None or strength <= STYLE_MOTION_LIMIT:
        return None
    asks = [
        f"'{hit}' ({_where(name)})"
        for name, text in sources.items()
        if (hit := _affirmed(_LARGE_MOTION, text))
    ]
    intensity = knobs.get("motion_intensity")
    if intensity is not None and intensity >= LARGE_MOTION_INTENSITY:
        asks.append(f"motion_intensity {intensity:g}")
    if not asks:
        return None
    return (
        f"style_strength {strength:g} holds scene {scene.id!r} close to its image, and above about "
        f"{STYLE_MOTION_LIMIT:g} motion becomes constrained, so {' and '.join(asks[:2])} will move less "
        "than asked; lower style_strength (0.6-0.7 keeps the look and lets things move) or ask for less motion"
    )


def _knob_warnings(loaded: LoadedStoryboard, capabilities: Capabilities) -> list[tuple[str, str]]:
    """(field, message) for each knob set where the backend cannot take it, at the line that sets it."""
    board = loaded.storyboard
    found = []
    for name in KNOBS:
        if capabilities.takes_knob(name):
            continue
        fields = [f"generation.{name}"] if getattr(board.generation, name) is not None else []
        fields += [
            f"scenes[{i}].{name}" for i, scene in enumerate(board.scenes) if getattr(scene, name) is not None
        ]
        for field in fields:
            found.append(
                (
                    field,
                    f"the {capabilities.name} backend does not take {name}, so it is not sent and its takes "
                    f"use the service's own default (the manifest lists it under knobs_not_sent); use a "
                    f"backend that takes it (docs/storyboard.md) or remove {name}",
                )
            )
    return found


def lint(
    loaded: LoadedStoryboard,
    *,
    token_limit: int = PROMPT_TOKEN_LIMIT,
    capabilities: Capabilities | None = None,
) -> list[LintWarning]:
    """Every prompt-lint warning of a storyboard, in file order (the style line first, then scene by scene).

    Length is judged on the prompt as sent (``storyboard.prompt_for(scene)``, style included)
    but reported at the scene's ``prompt`` line; the style line itself is checked for
    negations only, once. With ``capabilities`` (the backend the storyboard will be rendered
    with), each knob set that the backend cannot take is a ``knob-unsupported`` warning at the
    line that sets it; these come last.
    """
    board = loaded.storyboard
    warnings: list[LintWarning] = []

    def warn(field: str, rule: Rule, message: str) -> None:
        warnings.append(LintWarning(loaded.locate(field, message), rule))

    if board.style and (excluded := _exclusions(board.style)):
        warn("style", "negation", _negation_message(excluded, None))
    for index, scene in enumerate(board.scenes):
        prompt_field = f"scenes[{index}].prompt"
        length = _length(board.prompt_for(scene), board.style, token_limit)
        if length is not None:
            warn(prompt_field, *length)
        sources = {"camera": scene.camera or "", "prompt": scene.prompt, "style": board.style}
        if (message := _no_motion(sources)) is not None:
            warn(prompt_field, "no-motion", message)
        if excluded := _exclusions(scene.prompt):
            warn(prompt_field, "negation", _negation_message(excluded, scene))
        for message, involved in _conflicts(sources):
            # A clash inside `camera:` is fixed there; anything else is fixed in the prompt.
            field = f"scenes[{index}].camera" if involved == {"camera"} else prompt_field
            warn(field, "conflict", message)
        if (message := _style_motion(scene, sources, board.knobs_for(index))) is not None:
            # At the line that sets the strength: the scene's own, else generation's default.
            warn(board.knob_field(index, "style_strength") or prompt_field, "style-motion", message)
    if capabilities is not None:
        for field, message in _knob_warnings(loaded, capabilities):
            warn(field, "knob-unsupported", message)
    return warnings
