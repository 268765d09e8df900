"""SVG plots written in Python for ragate's self-contained HTML pages (no script, no CDN).

The gate report (:mod:`gates.reporters.html`) draws histograms and scatters with them; the
monitor page (:mod:`gates.reporters.monitor`) draws a time series per metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 460, 210
LEFT, RIGHT, TOP, BOTTOM = 46, 14, 14, 38
PASS_COLOUR, FAIL_COLOUR, INK, MUTED = "#2e7d32", "#c62828", "#222", "#777"


def _nice_upper(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _range(values: Sequence[float], threshold: float | None) -> tuple[float, float]:
    """[0, 1] for a score; [0, a round upper bound] for a unit like milliseconds."""
    top = max([*values, threshold or 0.0, 0.0])
    return (0.0, 1.0) if top <= 1.0 else (0.0, _nice_upper(top * 1.05))


def _tick(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e4 else f"{value:.3g}"


class _Plot:
    """A plot area mapping data coordinates to SVG pixels."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.parts: list[str] = []

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return LEFT + (min(max(value, self.x0), self.x1) - self.x0) / span * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return HEIGHT - BOTTOM - (value - self.y0) / span * (HEIGHT - TOP - BOTTOM)

    def axes(
        self,
        xlabel: str,
        ylabel: str,
        y_ticks: Sequence[float] | None = None,
        x_labels: Sequence[tuple[float, str]] | None = None,
    ) -> None:
        """Axes with ticks; ``x_labels`` (value, text) replace the six evenly spaced x ticks
        (dates on a time axis)."""
        base, left = HEIGHT - BOTTOM, LEFT
        self.parts.append(
            f'<line x1="{left}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="{INK}"/>'
            f'<line x1="{left}" y1="{TOP}" x2="{left}" y2="{base}" stroke="{INK}"/>'
        )
        if x_labels is None:
            x_labels = [(v, _tick(v)) for v in (self.x0 + (self.x1 - self.x0) * i / 5 for i in range(6))]
        for value, label in x_labels:
            px = self.x(value)
            self.parts.append(
                f'<line x1="{px:.1f}" y1="{base}" x2="{px:.1f}" y2="{base + 4}" stroke="{INK}"/>'
                f'<text x="{px:.1f}" y="{base + 15}" text-anchor="middle">{escape(label)}</text>'
            )
        for value in (
            y_ticks if y_ticks is not None else [self.y0 + (self.y1 - self.y0) * i / 4 for i in range(5)]
        ):
            py = self.y(value)
            self.parts.append(
                f'<line x1="{left - 4}" y1="{py:.1f}" x2="{left}" y2="{py:.1f}" stroke="{INK}"/>'
                f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">{_tick(value)}</text>'
            )
        self.parts.append(
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
            f"{escape(xlabel)}</text>"
            f'<text transform="translate(12,{(TOP + base) / 2}) rotate(-90)" text-anchor="middle">'
            f"{escape(ylabel)}</text>"
        )

    def vline(self, value: float, colour: str, label: str) -> None:
        px = self.x(value)
        self.parts.append(
            f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{HEIGHT - BOTTOM}" stroke="{colour}" '
            f'stroke-width="2" stroke-dasharray="5,3"><title>{escape(label)}</title></line>'
            f'<text x="{min(px + 4, WIDTH - RIGHT - 60):.1f}" y="{TOP + 10}" fill="{colour}" '
            f'style="fill:{colour}">{escape(label)}</text>'
        )

    def svg(self, title: str) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>" + "".join(self.parts) + "</svg>"
        )


def histogram_svg(
    values: Sequence[float],
    title: str,
    xlabel: str,
    markers: Sequence[tuple[float, str, str]] = (),
    bins: int = 20,
    x_range: tuple[float, float] | None = None,
) -> str:
    """An SVG histogram of ``values``; ``markers`` are vertical lines (value, colour, label)."""
    lo, hi = x_range or _range(values, max((m[0] for m in markers), default=None))
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / width)))] += 1
    top = max(counts, default=0) or 1
    step = max(1, math.ceil(top / 4))
    y_ticks = list(range(0, top + step, step))
    plot = _Plot((lo, hi), (0.0, float(y_ticks[-1])))
    plot.axes(xlabel, "cases", y_ticks)
    for i, count in enumerate(counts):
        if not count:
            continue
        x_left, x_right = plot.x(lo + i * width), plot.x(lo + (i + 1) * width)
        y_top = plot.y(count)
        plot.parts.append(
            f'<rect x="{x_left + 0.5:.1f}" y="{y_top:.1f}" width="{max(x_right - x_left - 1, 1):.1f}" '
            f'height="{HEIGHT - BOTTOM - y_top:.1f}" fill="#5c85d6">'
            f"<title>{_tick(lo + i * width)}-{_tick(lo + (i + 1) * width)}: {count}</title></rect>"
        )
    for value, colour, label in markers:
        plot.vline(value, colour, label)
    return plot.svg(title)


def scatter_svg(
    points: Sequence[tuple[str, float, float, bool]], title: str, xlabel: str, ylabel: str
) -> str:
    """An SVG scatter of (case id, champion, candidate, passes) with the line y = x."""
    values = [p[1] for p in points] + [p[2] for p in points]
    lo, hi = _range(values, None)
    plot = _Plot((lo, hi), (lo, hi))
    plot.axes(xlabel, ylabel)
    plot.parts.append(
        f'<line x1="{plot.x(lo):.1f}" y1="{plot.y(lo):.1f}" x2="{plot.x(hi):.1f}" y2="{plot.y(hi):.1f}" '
        f'stroke="{MUTED}" stroke-dasharray="3,3"/>'
    )
    for case_id, old, new, ok in points:
        colour = PASS_COLOUR if ok else FAIL_COLOUR
        plot.parts.append(
            f'<circle cx="{plot.x(old):.1f}" cy="{plot.y(new):.1f}" r="3.5" fill="{colour}" '
            'fill-opacity="0.75">'
            f"<title>{escape(case_id)}: champion {old:.3g}, candidate {new:.3g}</title></circle>"
        )
    return plot.svg(title)


def time_series_svg(
    series: Sequence[tuple[str, Sequence[tuple[str, float]], str]],
    title: str,
    ylabel: str,
    markers: Sequence[tuple[float, str, str]] = (),
    y_range: tuple[float, float] | None = None,
) -> str:
    """An SVG line plot over days: ``series`` are (name, [(day, value)...], colour), days as
    ISO dates (the x axis is the union of days, in order); ``markers`` are horizontal lines
    (value, colour, label), such as the baseline's mean or a threshold."""
    days = sorted({day for _, points, _ in series for day, _ in points})
    values = [v for _, points, _ in series for _, v in points] + [m[0] for m in markers]
    lo, hi = y_range or _range(values, None)
    last = max(len(days) - 1, 1)
    plot = _Plot((-0.5, last + 0.5), (lo, hi))
    # At most eight date labels, evenly picked: a month of days stays readable.
    every = max(1, math.ceil(len(days) / 8))
    plot.axes("day (UTC)", ylabel, x_labels=[(i, d[5:]) for i, d in enumerate(days) if i % every == 0])
    index = {d: i for i, d in enumerate(days)}
    for value, colour, label in markers:
        py = plot.y(value)
        plot.parts.append(
            f'<line x1="{LEFT}" y1="{py:.1f}" x2="{WIDTH - RIGHT}" y2="{py:.1f}" stroke="{colour}" '
            f'stroke-width="1.5" stroke-dasharray="5,3"><title>{escape(label)}</title></line>'
            f'<text x="{WIDTH - RIGHT - 4}" y="{py - 4:.1f}" text-anchor="end" fill="{colour}" '
            f'style="fill:{colour}">{escape(label)}</text>'
        )
    for name, points, colour in series:
        coords = [(plot.x(index[d]), plot.y(v), d, v) for d, v in sorted(points)]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in coords)
            plot.parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, day, value in coords:
            plot.parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(name)} {escape(day)}: {value:.4g}</title></circle>"
            )
    return plot.svg(title)
