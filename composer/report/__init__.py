"""The drift report: ``report.json`` (data, versioned) and ``report.html`` (one self-contained page)."""

from __future__ import annotations

from pathlib import Path

from composer.errors import ComposerError
from composer.files import write_json_atomic
from composer.files import write_text_atomic as _write_text_atomic
from composer.report.html import render_html
from composer.report.model import Report

__all__ = ["Report", "rebuild", "render_html", "write_html", "write_report"]


def write_report(report: Report, folder: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``folder``; returns both paths."""
    json_path, html_path = folder / "report.json", folder / "report.html"
    write_json_atomic(json_path, report.model_dump(mode="json"))
    _write_text_atomic(html_path, render_html(report))
    return json_path, html_path


def write_html(report: Report, path: Path) -> Path:
    """Write just the page, for reports made outside a render (``composer analyze --html``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text_atomic(path, render_html(report))
    return path


def rebuild(run_dir: Path) -> Path:
    """Rebuild ``report.html`` from a run folder's ``report.json``."""
    json_path = run_dir / "report.json"
    try:
        report = Report.model_validate_json(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ComposerError(
            f"{json_path} not found; give the folder a render wrote (it holds report.json)"
        ) from None
    except ValueError as exc:
        raise ComposerError(f"{json_path} is not a composer report ({str(exc).splitlines()[0]})") from None
    html_path = run_dir / "report.html"
    _write_text_atomic(html_path, render_html(report))
    return html_path
