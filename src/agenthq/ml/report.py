"""`agenthq report --html`: one self-contained page — the charts inline as SVG, each with its
data as a CSV download — that opens anywhere, offline, and can be mailed as one file."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from agenthq.ml.charts import draw
from agenthq.ml.trends import Chart

__all__ = ["render_html"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agenthq report — last {{ since }}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111827;
       margin: 0 auto; max-width: 980px; padding: 24px; background: #f9fafb; }
h1 { font-size: 20px; margin: 0 0 4px; } .muted { color: #6b7280; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 12px 16px;
          margin: 16px 0; }
section svg { width: 100%; height: auto; }
a.csv { font-size: 12px; } table { border-collapse: collapse; font-size: 12px; margin-top: 6px; }
td, th { padding: 2px 8px; border-bottom: 1px solid #f3f4f6; text-align: right; }
td:first-child, th:first-child { text-align: left; }
</style></head><body>
<h1>agenthq report</h1>
<div class="muted">the last {{ since }}, to {{ generated }} (UTC)</div>
{% for chart in charts %}
<section id="{{ chart.name }}">
  {{ chart.svg }}
  <a class="csv" download="{{ chart.name }}.csv" href="data:text/csv;base64,{{ chart.csv64 }}">
    Download {{ chart.name }}.csv</a>
  {% if chart.rows and chart.rows|length <= 12 %}
  <table><tr>{% for c in chart.columns %}<th>{{ c }}</th>{% endfor %}</tr>
  {% for row in chart.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}
  </table>{% endif %}
</section>
{% endfor %}
</body></html>
"""


def render_html(charts: Sequence[Chart], *, since: str, now: float) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    shown = [
        {
            "name": c.name,
            "columns": c.columns,
            "rows": c.rows,
            # matplotlib's own SVG without its XML prologue; matplotlib escapes every text it
            # writes (an agent named `<script>` stays text: tested).
            "svg": Markup(_svg_body(draw(c, "svg"))),  # noqa: S704
            "csv64": base64.b64encode(c.csv().encode()).decode(),
        }
        for c in charts
    ]
    return env.from_string(_PAGE).render(
        charts=shown,
        since=since,
        generated=time.strftime("%Y-%m-%d %H:%M", time.gmtime(now)),
    )


def _svg_body(svg: bytes) -> str:
    text = svg.decode()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text
