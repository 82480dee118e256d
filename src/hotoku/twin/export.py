"""Writing results to disk (an adapter: the models never do I/O)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from hotoku.twin.results import Results


def write_parquet(results: Sequence[Results], out_dir: Path) -> list[Path]:
    """``<controller>.parquet`` (time series), ``<controller>-clipped.parquet`` and ``kpis.json`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        p = out_dir / f"{r.controller or 'run'}.parquet"
        r.series().to_parquet(p, engine="pyarrow")
        c = out_dir / f"{r.controller or 'run'}-clipped.parquet"
        r.clipped_commands().to_parquet(c, engine="pyarrow")
        written += [p, c]
    k = out_dir / "kpis.json"
    k.write_text(json.dumps({r.controller: r.kpis for r in results}, indent=2))
    return [*written, k]


def write_report(results: Sequence[Results], file: Path) -> Path:
    """One self-contained HTML file."""
    from hotoku.twin.report import render_html

    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(render_html(results), encoding="utf-8")
    return file
