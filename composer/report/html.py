"""Draw a :class:`~composer.report.model.Report` as one self-contained HTML page.

No network, no CDN, no script: CSS inline, charts as inline SVG, thumbnails as data URIs.
Every string that comes from the storyboard or a file name goes through ``html.escape``,
so a prompt holding ``<script>`` shows as text. What does not live here: the numbers
(``report/model.py``) or writing files (``report/__init__.py``).
"""

from __future__ import annotations

import re
from html import escape

from composer.backends import calls_service
from composer.export.records import STAGES, Latency, RunMetrics
from composer.report.model import (
    Curve,
    DuplicateCharge,
    OutputReport,
    Report,
    SeamReport,
    SegmentReport,
)

#: The only thumbnails a page shows: JPEG data URIs as composer writes them. A ``report.json``
#: may have been edited, and any other value in an ``<img src>`` or a ``url()`` could make the
#: page load a remote address (or break out of the attribute).
_THUMBNAIL = re.compile(r"^data:image/jpeg;base64,[A-Za-z0-9+/]+={0,2}$")


def _thumbnail(uri: str | None) -> str:
    """``uri`` if it is a ``data:image/jpeg;base64,`` thumbnail, else "" (not shown)."""
    return uri if uri is not None and _THUMBNAIL.match(uri) else ""


_CSS = """
:root { --ok:#2e7d32; --warn:#b7791f; --bad:#c53030; --ink:#1a202c; --mute:#718096; --line:#e2e8f0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, Segoe UI, Roboto, sans-serif; color: var(--ink);
       margin: 0; background: #f7fafc; }
header { background: #1a202c; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #cbd5e0; }
main { padding: 20px 28px 60px; max-width: 1280px; }
h2 { margin: 28px 0 10px; font-size: 18px; }
h3 { margin: 0 0 6px; font-size: 15px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; min-width: 150px; }
.card b { display: block; font-size: 22px; }
.strip { display: flex; height: 64px; border-radius: 6px; overflow: hidden; border: 1px solid var(--line); }
.strip div { position: relative; border-right: 2px solid #fff; background-size: cover; background-position: center; }
.strip span { position: absolute; left: 4px; bottom: 3px; font-size: 11px; color: #fff;
              text-shadow: 0 0 3px #000; }
.strip .ok { box-shadow: inset 0 -5px 0 var(--ok); } .strip .warn { box-shadow: inset 0 -5px 0 var(--warn); }
.strip .regenerate { box-shadow: inset 0 -5px 0 var(--bad); }
.segment, .seam { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 12px 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; margin-left: 6px; }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); } .badge.regenerate { background: var(--bad); }
.badge.info { background: var(--mute); }
.prompt { color: #2d3748; white-space: pre-wrap; margin: 4px 0 8px; }
.charts { display: flex; flex-wrap: wrap; gap: 10px; }
.chart { border: 1px solid var(--line); border-radius: 6px; padding: 4px 6px; }
.chart p { margin: 0; font-size: 12px; color: var(--mute); }
table { border-collapse: collapse; margin-top: 8px; font-size: 13px; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--mute); font-weight: 600; }
.thumbs { display: flex; gap: 8px; }
.thumbs figure { margin: 0; }
.thumbs img { width: 200px; border-radius: 4px; display: block; }
.findings { list-style: none; padding: 0; margin: 8px 0; }
.finding { display: flex; gap: 10px; align-items: center; margin: 4px 0; font-size: 14px; }
.finding img { width: 160px; border-radius: 4px; }
.thumbs figcaption { font-size: 12px; color: var(--mute); }
.mute { color: var(--mute); }
"""


def _badge(verdict: str, text: str | None = None) -> str:
    cls = verdict if verdict in {"ok", "warn", "regenerate"} else "info"
    return f'<span class="badge {cls}">{escape(text or verdict)}</span>'


def chart(curve: Curve, width: int = 300, height: int = 90) -> str:
    """An inline SVG line chart with dashed warn (amber) and regenerate (red) levels."""
    pad = 4
    values = list(curve.values)
    levels = [v for v in (curve.warn, curve.regenerate) if v is not None]
    if not values:
        return f'<div class="chart"><p>{escape(curve.name)}: no data</p></div>'
    lo, hi = min([*values, *levels]), max([*values, *levels])
    if hi - lo < 1e-9:
        hi, lo = hi + 1, lo - 1
    t0, t1 = curve.t_s[0], curve.t_s[-1] if curve.t_s[-1] > curve.t_s[0] else curve.t_s[0] + 1

    def x(t: float) -> float:
        return pad + (t - t0) / (t1 - t0) * (width - 2 * pad)

    def y(v: float) -> float:
        return height - pad - (v - lo) / (hi - lo) * (height - 2 * pad)

    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(curve.t_s, values, strict=False))
    lines = []
    for level, color in ((curve.warn, "#b7791f"), (curve.regenerate, "#c53030")):
        if level is not None:
            lines.append(
                f'<line x1="{pad}" x2="{width - pad}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
                f'stroke="{color}" stroke-dasharray="4 3" stroke-width="1"/>'
            )
    unit = f" {escape(curve.unit)}" if curve.unit else ""
    last = values[-1]
    return (
        f'<div class="chart"><p>{escape(curve.name)}: {last:.3g}{unit} at the end</p>'
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(curve.name)}"><rect width="{width}" height="{height}" fill="#fff"/>'
        f"{''.join(lines)}"
        f'<polyline fill="none" stroke="#2b6cb0" stroke-width="1.5" points="{points}"/></svg></div>'
    )


def _segment(seg: SegmentReport) -> str:
    rows = []
    for attempt, decision in zip(seg.attempts, seg.decisions, strict=False):
        worst = sorted(attempt.checks, key=lambda c: -c.severity)[:3]
        checks = (
            ", ".join(f"{escape(c.name)} {c.value:.3g} ({escape(c.verdict)})" for c in worst) or "no checks"
        )
        rows.append(
            f"<tr><td>{attempt.number}</td><td>{attempt.seed}</td><td>{attempt.from_chunk + 1}</td>"
            f"<td>{_badge(attempt.verdict)}</td><td>{attempt.score:.3g}</td><td>{checks}</td>"
            f"<td>{escape(decision.action)}: {escape(decision.reason)}</td></tr>"
        )
    state = "regenerate" if seg.flagged else ("warn" if seg.regenerated else "ok")
    label = "flagged" if seg.flagged else ("regenerated" if seg.regenerated else "passed")
    thumb = (
        f'<div class="thumbs"><figure><img alt="middle frame of {escape(seg.id)}" src="{_thumbnail(seg.thumbnail)}">'
        f"<figcaption>kept take, middle frame</figcaption></figure></div>"
        if _thumbnail(seg.thumbnail)
        else ""
    )
    why = "".join(
        '<li class="finding">'
        + (
            f'<img alt="{escape(f.signal)} at {f.t_s or 0:.2f} s" src="{_thumbnail(f.thumbnail)}">'
            if _thumbnail(f.thumbnail)
            else ""
        )
        + f"<span>attempt {f.attempt} {_badge(f.verdict)} <b>{escape(f.signal)}</b>: {escape(f.explanation)}</span></li>"
        for f in seg.findings
    )
    why = f'<ul class="findings">{why}</ul>' if why else ""
    knobs = "".join(
        f" · {escape(name)} {value:g}" + (" (not sent)" if name in seg.knobs_not_sent else "")
        for name, value in seg.knobs.items()
    )
    return (
        f'<section class="segment" id="seg-{escape(seg.id)}"><h3>{escape(seg.id)} · scene '
        f"{escape(seg.scene_id)} · {seg.start_s:.2f}–{seg.end_s:.2f} s{knobs} {_badge(state, label)}</h3>"
        f'<p class="prompt">{escape(seg.prompt)}</p>{thumb}{why}'
        f'<div class="charts">{"".join(chart(c) for c in seg.curves)}</div>'
        f"<table><tr><th>attempt</th><th>seed</th><th>from chunk</th><th>verdict</th><th>score</th>"
        f"<th>worst checks</th><th>decision</th></tr>{''.join(rows)}</table></section>"
    )


def _seam(seam: SeamReport) -> str:
    figures = "".join(
        f'<figure><img alt="{escape(key)} the join" src="{escape(uri)}"><figcaption>{escape(key)}</figcaption></figure>'
        for key, uri in seam.thumbnails.items()
        if _thumbnail(uri)
    )
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{escape(str(v)) if v is not None else ''}</td>" for v in check.values())
        + "</tr>"
        for check in seam.checks
    )
    header = "".join(f"<th>{escape(str(k))}</th>" for k in (seam.checks[0].keys() if seam.checks else ()))
    status = _badge(seam.verdict) if seam.checked else _badge("info", "scene change, not judged")
    table = f"<table><tr>{header}</tr>{rows}</table>" if rows else ""
    return (
        f'<section class="seam"><h3>{escape(seam.before)} → {escape(seam.after)} · {escape(seam.kind)} at '
        f'{seam.t_s:.2f} s {status}</h3><div class="thumbs">{figures}</div>{table}</section>'
    )


def _strip(output: OutputReport) -> str:
    total = max(1e-9, output.duration_s)
    cells = []
    for seg in output.segments:
        share = (seg.end_s - seg.start_s) / total * 100
        state = "regenerate" if seg.flagged else ("warn" if seg.regenerated else "ok")
        style = f"width:{share:.3f}%"
        if _thumbnail(seg.thumbnail):
            style += f";background-image:url('{_thumbnail(seg.thumbnail)}')"
        cells.append(
            f'<div class="{state}" style="{style}" title="{escape(seg.id)}: {escape(seg.verdict)}">'
            f"<span>{escape(seg.id)}</span></div>"
        )
    return f'<div class="strip">{"".join(cells)}</div>'


def _run_metrics(metrics: RunMetrics) -> str:
    """The "Run metrics" section: per stage P50 / P95 / P99 / max, then the counts and the cost."""

    def seconds(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f} s"

    parts = ["<h2>Run metrics</h2>"]
    for m in metrics.backends.values():
        stages: list[tuple[str, Latency]] = [(stage, getattr(m, stage)) for stage in STAGES]
        rows = "".join(
            f"<tr><td>{escape(stage)}</td><td>{lat.samples}</td><td>{seconds(lat.p50_s)}</td>"
            f"<td>{seconds(lat.p95_s)}</td><td>{seconds(lat.p99_s)}</td><td>{seconds(lat.max_s)}</td></tr>"
            for stage, lat in stages
        )
        rate = "–" if m.success_rate is None else f"{m.success_rate * 100:.1f}%"
        per_s = "" if m.cost_per_generated_s_usd is None else f" (${m.cost_per_generated_s_usd:.4f}/s)"
        flagged = "–" if m.segments_flagged is None else str(m.segments_flagged)
        counts = [
            ("success rate", rate),
            ("generated", str(m.generated)),
            ("cache hits", str(m.cache_hits)),
            ("retries", str(m.retries)),
            ("regenerations", str(m.regenerations)),
            ("flagged", flagged),
            ("cost", f"${m.cost_usd:.2f}{per_s}"),
        ]
        parts.append(
            f'<table class="run-metrics"><tr><th colspan="6">{escape(m.backend)} ({escape(m.model_id)})</th></tr>'
            f"<tr><th>stage</th><th>samples</th><th>P50</th><th>P95</th><th>P99</th><th>max</th></tr>{rows}</table>"
            '<table class="run-metrics"><tr>'
            + "".join(f"<th>{escape(k)}</th>" for k, _ in counts)
            + "</tr><tr>"
            + "".join(f"<td>{escape(v)}</td>" for _, v in counts)
            + "</tr></table>"
        )
    return "".join(parts)


def _duplicate_charges(charges: list[DuplicateCharge]) -> str:
    """The takes that may have been paid for twice, with the operation ids to look up on the bill."""
    rows = []
    for c in charges:
        creates = ", ".join(f"#{u.get('attempt')} at {u.get('sent_at')}" for u in c.unanswered_creates)
        cells = (
            f"{c.take} ({c.key[:12]})",
            ", ".join(c.operations) or "none",
            ", ".join(c.duplicate_operations) or "none",
            creates or "none",
            f"${c.possibly_charged_usd:.2f}",
        )
        rows.append("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in cells) + "</tr>")
    return (
        "<h2>Possible duplicate charges</h2>"
        '<p class="mute">Creates that got no answer may have started operations the service bills; '
        "check these operation ids and send times against the service's bill.</p>"
        '<table class="duplicates"><tr><th>take</th><th>operations</th><th>duplicates found</th>'
        f"<th>creates without an answer</th><th>possibly charged</th></tr>{''.join(rows)}</table>"
    )


def render_html(report: Report) -> str:
    s = report.summary
    cards = [
        ("segments passed", f"{s.segments_passed} / {s.segments}"),
        ("segments regenerated", str(s.segments_regenerated)),
        ("segments flagged", str(s.segments_flagged)),
        ("with warnings", str(s.segments_warned)),
        ("seams passed", f"{s.seams_passed} / {s.seams}"),
        ("seams flagged", str(s.seams_flagged)),
        ("attempts", str(s.attempts)),
    ]
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(report.title or 'composer report')} · drift report</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{escape(report.title or 'Untitled storyboard')}</h1>",
        f"<p>{escape(report.storyboard)} · backend {escape(report.backend)} ({escape(report.model_id)}) · "
        f"{escape(report.created_at)} · regeneration {'on' if report.regenerate else 'off'}, "
        f"up to {report.max_attempts} attempts</p></header><main>",
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{escape(v)}</b>{escape(k)}</div>' for k, v in cards)
        + "</div>",
    ]
    api = report.metrics.backends.get(report.backend) if report.metrics is not None else None
    if api is not None and calls_service(report.backend):
        budget = report.budget_usd
        api_cards = [
            ("operations", str(api.operations)),
            ("cost", f"${api.cost_usd:.2f}" + (f" of ${budget:.2f}" if budget is not None else "")),
            ("retries", str(api.retries)),
            ("possible duplicates", str(api.possible_duplicates)),
            (
                "possibly charged",
                f"${sum(c.possibly_charged_usd for c in report.possible_duplicate_charges):.2f}",
            ),
            ("resumed", str(api.resumed)),
            ("without a take", str(sum(api.abandoned_operations.values()))),
        ]
        parts.append(
            '<h2>API</h2><div class="cards">'
            + "".join(f'<div class="card"><b>{escape(v)}</b>{escape(k)}</div>' for k, v in api_cards)
            + "</div>"
        )
    if report.possible_duplicate_charges:
        parts.append(_duplicate_charges(report.possible_duplicate_charges))
    if report.metrics is not None:
        parts.append(_run_metrics(report.metrics))
    if report.problems:
        parts.append("<h2>Problems</h2>")
        parts.extend(
            f'<div class="segment"><h3>{escape(p.segment)}{_badge("regenerate", p.kind)}</h3>'
            f'<p class="prompt">{escape(p.message)}</p></div>'
            for p in report.problems
        )
    parts.extend(f'<p class="mute">note: {escape(n)}</p>' for n in report.notes)
    for output in report.outputs:
        parts.append(f"<h2>{escape(output.name)} · {output.frames} frames · {output.duration_s:g} s</h2>")
        parts.append(_strip(output))
        parts.append("<h2>Segments</h2>")
        parts.extend(_segment(seg) for seg in output.segments)
        if output.seams:
            parts.append("<h2>Seams</h2>")
            parts.extend(_seam(seam) for seam in output.seams)
    parts.append("</main></body></html>")
    return "".join(parts)
