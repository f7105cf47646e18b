"""Several storyboards in one run: ``composer render A.yaml B.yaml -o DIR [--ray [ADDRESS]]``.

:func:`render_many` renders each storyboard into ``DIR/<storyboard stem>/`` (the usual
``plan.json``, outputs, ``manifest.json``, report and timeline) and writes ``DIR/batch.json``:
the storyboards, their outputs, the cost, possible duplicate charges and takes shared between
storyboards, and the failures. Every storyboard is checked and planned before anything is
generated, so a bad file stops the batch before it spends anything.

On this machine the storyboards are rendered one after another with the existing runner and
one set of limits (the budget, the creates per minute) for the whole batch. With ``ray`` they
are rendered on a Ray cluster (``composer/cluster.py``, imported only then, so the default
install never needs Ray). Either way a batch run again resumes: finished takes come from the
take store, journaled operations are polled rather than created again, and outputs whose
takes did not change are kept.

What does not live here: the stages of one render (``pipeline.py``), Ray (``cluster.py``),
terminal output (``cli.py``).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from composer._version import __version__
from composer.errors import ComposerError, EnvironmentProblem, PlanError
from composer.export.manifest import Manifest
from composer.files import write_json_atomic
from composer.jobs.limits import Ledger, LocalLimits
from composer.pipeline import (
    Planned,
    Progress,
    RenderOptions,
    RenderResult,
    make_output_folder,
    plan_render,
    run,
)

BATCH_VERSION = 1
RAY_ADDRESS_ENV = "RAY_ADDRESS"


@dataclass(frozen=True)
class BatchProgress:
    """A storyboard's progress within the batch (``name`` is its folder under the batch's)."""

    name: str
    progress: Progress


BatchProgressFn = Callable[[BatchProgress], None]


@dataclass(frozen=True)
class StoryboardResult:
    """What one storyboard of a batch made (or why it did not), as ``batch.json`` lists it."""

    name: str
    source: str
    out_dir: str
    status: str  # complete | failed
    outputs: list[str] = field(default_factory=list)
    manifest: str | None = None
    cost_usd: float = 0.0
    generated: int = 0
    cache_hits: int = 0
    take_keys: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    possible_duplicates: int = 0
    possibly_charged_usd: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    #: Seconds from the batch's start until this storyboard was done.
    wall_s: float = 0.0


@dataclass(frozen=True)
class BatchResult:
    """The batch: every storyboard's result, and where ``batch.json`` is."""

    out_dir: Path
    batch_path: Path
    storyboards: list[StoryboardResult]
    wall_s: float
    mode: str  # local | ray

    @property
    def failures(self) -> list[StoryboardResult]:
        return [s for s in self.storyboards if s.status != "complete"]


def storyboard_result(
    name: str,
    source: Path,
    out: Path,
    result: RenderResult | None,
    error: BaseException | None,
    wall_s: float,
    *,
    error_kind: str | None = None,
) -> StoryboardResult:
    """One storyboard's entry, from its render (or its failure and the manifest it still wrote);
    ``error_kind`` names the error's class where the error itself could not travel."""
    manifest: Manifest | None = result.manifest if result is not None else None
    manifest_path = result.manifest_path if result is not None else getattr(error, "manifest_path", None)
    if manifest is None and manifest_path is not None and Path(manifest_path).is_file():
        manifest = Manifest.model_validate_json(Path(manifest_path).read_text())
    takes = manifest.takes if manifest is not None else []
    return StoryboardResult(
        name=name,
        source=str(source.resolve()),
        out_dir=str(out.resolve()),
        status="complete" if error is None else "failed",
        outputs=[o.path for o in manifest.outputs] if manifest is not None else [],
        manifest=str(manifest_path) if manifest_path is not None else None,
        cost_usd=manifest.cost_usd if manifest is not None else 0.0,
        generated=manifest.generated if manifest is not None else 0,
        cache_hits=manifest.cache_hits if manifest is not None else 0,
        take_keys=sorted({t.key for t in takes}),
        nodes=sorted({t.node for t in takes if t.node}),
        possible_duplicates=len(manifest.possible_duplicate_charges) if manifest is not None else 0,
        possibly_charged_usd=manifest.possibly_charged_usd if manifest is not None else 0.0,
        error=str(error) if error is not None else None,
        error_kind=error_kind or (type(error).__name__ if error is not None else None),
        wall_s=round(wall_s, 3),
    )


def _names(sources: Sequence[Path]) -> list[str]:
    names = [s.stem for s in sources]
    twice = sorted(n for n, c in Counter(names).items() if c > 1)
    if twice:
        raise PlanError(
            f"two storyboards of the batch would share the folder {twice[0]}/ (each goes to DIR/<stem>/); "
            "rename one of them"
        )
    return names


def ray_address(address: str | bool | None) -> str:
    """The cluster to use: ``address``, else ``$RAY_ADDRESS`` (as Ray's own tools do)."""
    if isinstance(address, str) and address:
        return address
    found = os.environ.get(RAY_ADDRESS_ENV, "").strip()
    if not found:
        raise EnvironmentProblem(
            "--ray needs a cluster address: give it (--ray HOST:PORT) or set RAY_ADDRESS; "
            "start a cluster with `ray start --head` (docs/cluster.md)"
        )
    return found


def render_many(
    sources: Sequence[str | Path],
    out_dir: str | Path = "renders",
    options: RenderOptions | None = None,
    *,
    ray: str | bool | None = None,
    on_progress: BatchProgressFn | None = None,
    **fields: Any,
) -> BatchResult:
    """Render several storyboards, each into ``out_dir/<stem>/``; ``out_dir/batch.json`` sums them up.

    The options are :func:`composer.render`'s keyword arguments (``backend=``, ``jobs=``,
    ``base_url=``...), or one :class:`~composer.pipeline.RenderOptions` as ``options``.

    ``ray``: None or False renders here, one storyboard after another, under one budget;
    True (``$RAY_ADDRESS``) or an address renders on that Ray cluster (docs/cluster.md).
    Every storyboard is planned before anything is generated, so a bad one raises its
    :class:`~composer.errors.StoryboardError` at once. A storyboard that fails later does not
    stop the others; its failure is in the result and in ``batch.json``.
    """
    started = time.perf_counter()
    if fields:
        if options is not None:
            raise TypeError("give the options as RenderOptions or as keyword arguments, not both")
        if fields.get("cache_dir") is not None:
            fields["cache_dir"] = Path(fields["cache_dir"])
        options = RenderOptions(**fields)
    options = options or RenderOptions()
    paths = [Path(s) for s in sources]
    if not paths:
        raise PlanError("give at least one storyboard to render")
    names = _names(paths)
    root = Path(out_dir)
    planned = [plan_render(p, options) for p in paths]  # every file checked before anything is spent
    address = ray_address(ray) if ray else None
    _write_batch(root, "ray" if address else "local", address, [], started, names)
    if address:
        from composer import cluster

        results = cluster.render_batch(address, names, planned, root, options, on_progress)
    else:
        results = _render_here(names, paths, planned, root, options, on_progress)
    path = _write_batch(root, "ray" if address else "local", address, results, started, names)
    return BatchResult(
        root.resolve(), path, results, round(time.perf_counter() - started, 3), "ray" if address else "local"
    )


def _render_here(
    names: list[str],
    paths: list[Path],
    planned: list[Planned],
    root: Path,
    options: RenderOptions,
    on_progress: BatchProgressFn | None,
) -> list[StoryboardResult]:
    # One budget and one minute of creates for the whole batch, as on a cluster; the rate
    # limit is --rpm's (a backend's declared quota applies within each render as before).
    limits = LocalLimits(
        Ledger(options.jobs.budget_usd), options.jobs.requests_per_minute, options.jobs.concurrency
    )
    results = []
    began = time.perf_counter()
    for name, path, plan in zip(names, paths, planned, strict=True):
        out = root / name

        def report(progress: Progress, name: str = name) -> None:
            if on_progress is not None:
                on_progress(BatchProgress(name, progress))

        result: RenderResult | None = None
        error: ComposerError | None = None
        try:
            result = run(plan.source_path, options, out, report, limits=limits)
        except ComposerError as exc:
            error = exc
        results.append(storyboard_result(name, path, out, result, error, time.perf_counter() - began))
    return results


def _write_batch(
    root: Path,
    mode: str,
    address: str | None,
    results: list[StoryboardResult],
    started: float,
    names: list[str],
) -> Path:
    """``batch.json``: written when the batch starts (status running) and again when it ends."""
    make_output_folder(root)
    uses = Counter(k for r in results for k in r.take_keys)
    data: dict[str, Any] = {
        "version": BATCH_VERSION,
        "composer_version": __version__,
        "mode": mode,
        "address": address,
        "status": "running"
        if not results
        else ("complete" if all(r.status == "complete" for r in results) else "failed"),
        "storyboards": [asdict(r) for r in results] or [{"name": n, "status": "running"} for n in names],
        "outputs": [o for r in results for o in r.outputs],
        "cost_usd": round(sum(r.cost_usd for r in results), 4),
        "generated": sum(r.generated for r in results),
        "cache_hits": sum(r.cache_hits for r in results),
        "nodes": sorted({n for r in results for n in r.nodes}),
        "duplicates": {
            # Creates that may have been charged twice (each storyboard's manifest lists them).
            "possible_charges": sum(r.possible_duplicates for r in results),
            "possibly_charged_usd": round(sum(r.possibly_charged_usd for r in results), 4),
            # Takes that more than one storyboard uses: made (and paid) once, reused by the rest.
            "shared_takes": sorted(k for k, n in uses.items() if n > 1),
        },
        "failures": [
            {"storyboard": r.name, "kind": r.error_kind, "message": r.error, "manifest": r.manifest}
            for r in results
            if r.status != "complete"
        ],
        "wall_s": round(time.perf_counter() - started, 3),
    }
    path = root / "batch.json"
    write_json_atomic(path, data)
    return path
