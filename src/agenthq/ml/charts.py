"""Charts drawn with matplotlib (the `learn` extra): the trend charts as SVG or PNG, the
model's calibration plot and feature importances as PNG.

Everything is drawn on the Agg backend into memory — no display, no font cache surprises in
a server — and one look for all: the dashboard's colours, light grid, no chart junk.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agenthq.errors import LearningError
from agenthq.ml.trends import Chart

__all__ = ["calibration_png", "draw", "importances_png"]

COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c")
# The dashboard's dark panels (static/style.css) and the report's white page.
THEMES = {
    "light": {
        "face": "#ffffff",
        "text": "#111827",
        "muted": "#6b7280",
        "grid": "#e5e7eb",
        "edge": "#9ca3af",
        "series": COLOURS,
    },
    "dark": {
        "face": "#171d24",
        "text": "#e6edf3",
        "muted": "#8b98a5",
        "grid": "#26303a",
        "edge": "#4b5563",
        "series": ("#4ea1ff", "#f85149", "#3fb950", "#bc8cff", "#d29922"),
    },
}
_LOCK = threading.Lock()  # pyplot's state is global; the server draws from worker threads


def _pyplot(theme: str = "light") -> Any:
    try:
        import matplotlib
    except ImportError:
        raise LearningError("charts need matplotlib: pip install 'agenthq[learn]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from cycler import cycler

    if theme not in THEMES:
        raise LearningError(f"unknown chart theme {theme!r}: use {' or '.join(THEMES)}")
    look = THEMES[theme]
    plt.rcdefaults()
    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": look["grid"],
            "axes.edgecolor": look["edge"],
            "figure.facecolor": look["face"],
            "axes.facecolor": look["face"],
            "savefig.facecolor": look["face"],
            "text.color": look["text"],
            "axes.labelcolor": look["muted"],
            "axes.titlecolor": look["text"],
            "xtick.color": look["muted"],
            "ytick.color": look["muted"],
            "legend.labelcolor": look["text"],
            "axes.prop_cycle": cycler(color=list(look["series"])),
            "svg.fonttype": "none",  # text stays text: readable, searchable, small
        }
    )
    return plt


def draw(chart: Chart, fmt: str = "svg", theme: str = "light") -> bytes:
    """One trend chart; an empty one says there is nothing in the window yet."""
    with _LOCK:
        plt = _pyplot(theme)
        colours = THEMES[theme]["series"]
        figure, axes = plt.subplots(figsize=(7.2, 2.8), dpi=100)
        try:
            if chart.empty:
                axes.text(
                    0.5,
                    0.5,
                    "no data in this window",
                    ha="center",
                    va="center",
                    color=THEMES[theme]["muted"],
                    transform=axes.transAxes,
                )
                axes.set_xticks([])
                axes.set_yticks([])
            elif chart.kind == "bar":
                labels = [str(r[0]) for r in chart.rows]
                values = [float(r[1]) for r in chart.rows]
                bars = axes.bar(labels, values, color=colours[0], width=0.6)
                for bar, row in zip(bars, chart.rows, strict=True):
                    axes.annotate(
                        f"{row[1]}% of {row[2]}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center",
                        va="bottom",
                        fontsize=8,
                        color=THEMES[theme]["text"],
                    )
                axes.set_ylim(0, max([*values, 1.0]) * 1.2)
                axes.grid(axis="x", visible=False)
                axes.set_axisbelow(True)
                axes.tick_params(axis="x", labelrotation=20 if len(labels) > 5 else 0)
            else:
                times = [
                    datetime.strptime(str(r[0]), "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
                    for r in chart.rows
                ]
                for i, column in enumerate(chart.columns[1:3]):
                    values = [float(r[i + 1]) for r in chart.rows]
                    axes.plot(
                        times,
                        values,
                        marker="o" if len(times) < 40 else None,
                        markersize=3,
                        linewidth=1.6,
                        color=colours[i],
                        label=column.replace("_", " "),
                    )
                axes.set_ylim(bottom=0)
                if len(chart.columns) > 2:
                    axes.legend(frameon=False, loc="best")
                import matplotlib.dates as mdates

                locator = mdates.AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
                axes.xaxis.set_major_locator(locator)
                axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
                if len(times) == 1:  # one point: give it a day of room
                    axes.set_xlim(times[0] - timedelta(hours=12), times[0] + timedelta(hours=12))
            axes.set_title(chart.title, loc="left", fontsize=10, fontweight="bold")
            axes.set_xlabel(chart.x_label)
            axes.set_ylabel(chart.y_label)
            figure.tight_layout()
            return _save(figure, fmt)
        finally:
            plt.close(figure)


def calibration_png(
    failed: Sequence[int], predicted: Sequence[float], baseline: Sequence[float], bins: int = 10
) -> bytes:
    """Predicted probability vs how often it came true, for the model and the baseline."""
    from sklearn.calibration import calibration_curve

    with _LOCK:
        plt = _pyplot()
        figure, axes = plt.subplots(figsize=(5.2, 4.6), dpi=110)
        try:
            axes.plot([0, 1], [0, 1], linestyle="--", color="#9ca3af", label="perfectly calibrated")
            for name, scores, colour in (
                ("model", predicted, COLOURS[0]),
                ("baseline: agent's failure rate", baseline, COLOURS[1]),
            ):
                observed, mean = calibration_curve(failed, scores, n_bins=bins, strategy="uniform")
                axes.plot(mean, observed, marker="o", color=colour, label=name)
            axes.set_xlim(0, 1)
            axes.set_ylim(0, 1)
            axes.set_xlabel("predicted probability of failure")
            axes.set_ylabel("share that failed")
            axes.set_title("Calibration on held-out attempts", loc="left", fontweight="bold")
            axes.legend(frameon=False, loc="upper left")
            figure.tight_layout()
            return _save(figure, "png")
        finally:
            plt.close(figure)


def importances_png(names: Sequence[str], means: Sequence[float], stds: Sequence[float]) -> bytes:
    """Permutation importance: how much ROC-AUC drops when one feature is shuffled."""
    order = sorted(range(len(names)), key=lambda i: means[i])
    with _LOCK:
        plt = _pyplot()
        figure, axes = plt.subplots(figsize=(6.4, 0.32 * len(names) + 1.2), dpi=110)
        try:
            axes.barh(
                [names[i] for i in order],
                [means[i] for i in order],
                xerr=[stds[i] for i in order],
                color=COLOURS[0],
                ecolor="#6b7280",
            )
            axes.set_xlabel("drop in ROC-AUC when shuffled")
            axes.set_title("Feature importance (held-out attempts)", loc="left", fontweight="bold")
            axes.grid(axis="y", visible=False)
            figure.tight_layout()
            return _save(figure, "png")
        finally:
            plt.close(figure)


def _save(figure: Any, fmt: str) -> bytes:
    if fmt not in ("svg", "png"):
        raise LearningError(f"unknown chart format {fmt!r}: use svg or png")
    out = io.BytesIO()
    figure.savefig(out, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return out.getvalue()
