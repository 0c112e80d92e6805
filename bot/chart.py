"""The weekly summary's chart: production releases per day and median lead time, as a PNG.

matplotlib is an optional dependency (the ``chart`` extra); the text summary stands alone without it.
It is imported lazily, and only its object-oriented Figure API is used with the Agg canvas: no pyplot,
so no global figure state, no GUI backend, and safe to call from a worker thread.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import date
from importlib.util import find_spec

_BAR_COLOUR = "#4a90d9"
_LINE_COLOUR = "#d9534f"
# Room above the tallest bar and highest point so the legend in the top-left corner covers neither.
_HEADROOM = 1.4
_MISSING = "charts need matplotlib: install the 'chart' extra (pip install 'release-bot[chart]')"


class ChartUnavailable(RuntimeError):
    """matplotlib is not installed, so no chart can be drawn."""


def chart_available() -> bool:
    """True when matplotlib can be imported (the ``chart`` extra is installed)."""
    try:
        return find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        # find_spec raises ValueError for a module in sys.modules whose __spec__ is None.
        return False


def weekly_chart_png(
    per_day: Sequence[tuple[date, int]],
    lead_times_hours: Sequence[tuple[date, float | None]],
    *,
    title: str,
) -> bytes:
    """Render bars of releases per day and a line of median lead time (hours, right axis) as PNG bytes.

    The x axis is the days of ``per_day`` in order (zero days included); lead times on other days are
    ignored and days without one leave a gap in the line. Raises ChartUnavailable without matplotlib.
    """
    # Check the top-level package first: its submodules may already be cached in sys.modules.
    if not chart_available():
        raise ChartUnavailable(_MISSING)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        raise ChartUnavailable(_MISSING) from exc

    days = [day for day, _ in per_day]
    counts = [count for _, count in per_day]
    lead_by_day = dict(lead_times_hours)
    # NaN, not None, makes matplotlib break the line instead of joining across days without data.
    leads = [_or_nan(lead_by_day.get(day)) for day in days]
    positions = list(range(len(days)))

    figure = Figure(figsize=(8, 3.6), dpi=100)
    FigureCanvasAgg(figure)  # attaches itself to the figure; print_png below uses it
    bars = figure.add_subplot()
    bars.bar(positions, counts, color=_BAR_COLOUR, label="production releases")
    bars.set_ylabel("releases")
    # Explicit limits: all-zero data would otherwise give a degenerate axis.
    bars.set_ylim(0, max([1, *counts]) * _HEADROOM)
    bars.yaxis.set_major_locator(MaxNLocator(integer=True))
    bars.set_xticks(positions, [f"{day:%a}\n{day:%m-%d}" for day in days])
    if days:
        bars.set_xlim(-0.6, len(days) - 0.4)
    bars.set_title(title)

    line = bars.twinx()
    line.plot(positions, leads, color=_LINE_COLOUR, marker="o", label="median lead time (h)")
    line.set_ylabel("median lead time (hours)")
    known = [lead for lead in leads if not math.isnan(lead)]
    line.set_ylim(0, max([1.0, *known]) * _HEADROOM)

    handles = [*bars.get_legend_handles_labels()[0], *line.get_legend_handles_labels()[0]]
    bars.legend(handles=handles, loc="upper left", fontsize="small", frameon=False)
    figure.tight_layout()

    buffer = io.BytesIO()
    # Drop the "Software" text chunk so the bytes carry no version stamp; same data, same image.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value
