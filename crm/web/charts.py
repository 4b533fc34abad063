"""Charts drawn on the server as inline SVG: no chart library, no script, no inline style.

Each function returns a ``<figure>``: a caption, the SVG (``role="img"`` with a ``<title>`` and
``<desc>``), and the same figures as a table in a ``<details>``, for screen readers and anyone
who wants the numbers. Colours come from classes (app.css ``.chart``, dashboard.css); sizes
and positions are SVG attributes, which the page's Content-Security-Policy allows.

Every label and value is escaped (``_e``) before it joins the markup: campaign and rep names
are user data. The SVG is built with f-strings: ``Markup.format`` costs about ten times as
much, and a 90-day chart has hundreds of elements.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

Format = Callable[[float], str]

WIDTH = 640
LABEL_W = 170  # horizontal charts: room for the category labels
CHAR_W = 6.8  # about the width of a character of the charts' 11px bold values
ROW_H = 26
BAR_H = 16
LABEL_CHARS = 26  # longer labels are cut on the chart (the table has them whole)
# Charts over time: the y axis on the left, dates along the bottom.
PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM, PLOT_RIGHT = 48, 10, 24, 10
TIME_HEIGHT = 220
X_LABELS = 10  # at most this many dates are written under a time chart


@dataclass(frozen=True)
class Series:
    """One set of values drawn with one class (``bar``, ``bar-alt``, ``s-negative``...)."""

    name: str
    values: Sequence[float | None]
    css: str


@dataclass(frozen=True)
class Step:
    """A funnel step: its label, its count, and a note shown after it (a conversion rate)."""

    label: str
    value: float
    note: str = ""


def plain(value: float) -> str:
    """A count or amount with thousands separators, decimals only where there are some."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def percent(value: float) -> str:
    """A share in [0, 1] as a percentage."""
    return f"{value * 100:.1f}%"


def _n(value: float) -> str:
    """An SVG coordinate: short, no trailing zeros."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _value_room(shown: Iterable[str]) -> float:
    """Room after the longest bar for its value ("GHS 16,494,387.00" needs more than "3")."""
    return min(max((len(text) for text in shown), default=1) * CHAR_W + 12, WIDTH / 3)


def _cut(label: str, size: int = LABEL_CHARS) -> str:
    return label if len(label) <= size else label[: size - 1] + "…"


def _e(value: object) -> str:
    """Escaped for HTML and SVG text and attributes."""
    return str(escape(value))


def _text(x: float, y: float, content: str, css: str = "", anchor: str = "start") -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" class="{_e(css)}">'
        f"{_e(content)}</text>"
    )


def _rect(x: float, y: float, width: float, height: float, css: str, tip: str) -> str:
    return (
        f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(width, 0.0))}" height="{_n(height)}" '
        f'class="{_e(css)}"><title>{_e(tip)}</title></rect>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, css: str) -> str:
    return f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" class="{_e(css)}"/>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The chart's figures as a table; every column but the first is numeric."""
    head = "".join(
        f'<th scope="col"{"" if i == 0 else " class=num"}>{_e(header)}</th>'
        for i, header in enumerate(headers)
    )
    body = "".join(
        f'<tr><th scope="row">{_e(row[0])}</th>'
        + "".join(f'<td class="num">{_e(cell)}</td>' for cell in row[1:])
        + "</tr>"
        for row in rows
    )
    return f'<table class="chart-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _legend(series: Sequence[Series]) -> str:
    if not series:
        return ""
    keys = "".join(
        f'<span class="key"><span class="swatch {_e(s.css)}"></span>{_e(s.name)}</span>'
        for s in series
    )
    return f'<p class="chart-legend" aria-hidden="true">{keys}</p>'


def _safe(html: str) -> Markup:
    """The one place text becomes markup: every value in ``html`` went through ``_e``."""
    return Markup(html)  # noqa: S704


def _figure(
    chart_id: str,
    title: str,
    summary: str,
    body: Iterable[str],
    height: float,
    table: str,
    legend: Sequence[Series] = (),
) -> Markup:
    ident, caption = _e(chart_id), _e(title)
    return _safe(
        f'<figure class="chart-figure" id="{ident}">'
        f'<figcaption class="chart-title">{caption}</figcaption>{_legend(legend)}'
        f'<svg class="chart" viewBox="0 0 {WIDTH} {_n(height)}" role="img" focusable="false" '
        f'aria-labelledby="{ident}-t {ident}-d">'
        f'<title id="{ident}-t">{caption}</title><desc id="{ident}-d">{_e(summary)}</desc>'
        f"{''.join(body)}</svg>"
        f'<details class="chart-data"><summary>Data: {caption}</summary>{table}</details>'
        "</figure>"
    )


def _empty(chart_id: str, title: str, message: str) -> Markup:
    return _safe(
        f'<figure class="chart-figure" id="{_e(chart_id)}">'
        f'<figcaption class="chart-title">{_e(title)}</figcaption>'
        f'<p class="chart-empty muted">{_e(message)}</p></figure>'
    )


def hbars(
    chart_id: str,
    title: str,
    rows: Sequence[tuple[str, float]],
    *,
    fmt: Format = plain,
    max_value: float | None = None,
    css: str = "bar",
    headers: tuple[str, str] = ("", "Value"),
    empty: str = "No data for this range.",
) -> Markup:
    """Horizontal bars, one per row, lengths proportional to the values (from 0 to
    ``max_value``, else to the largest value)."""
    if not rows:
        return _empty(chart_id, title, empty)
    top = max_value if max_value is not None else max(value for _, value in rows)
    area = WIDTH - LABEL_W - _value_room(fmt(value) for _, value in rows)
    parts = [_line(LABEL_W, 0, LABEL_W, len(rows) * ROW_H, "axis")]
    for i, (label, value) in enumerate(rows):
        y = i * ROW_H + (ROW_H - BAR_H) / 2
        width = area * value / top if top > 0 else 0.0
        parts.append(_text(LABEL_W - 8, y + BAR_H - 4, _cut(label), anchor="end"))
        parts.append(_rect(LABEL_W, y, width, BAR_H, css, f"{label}: {fmt(value)}"))
        parts.append(_text(LABEL_W + width + 6, y + BAR_H - 4, fmt(value), "value"))
    summary = "; ".join(f"{label}: {fmt(value)}" for label, value in rows)
    table = _table(headers, [(label, fmt(value)) for label, value in rows])
    return _figure(chart_id, title, summary, parts, len(rows) * ROW_H, table)


def grouped_hbars(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Format = plain,
    empty: str = "No data for this range.",
) -> Markup:
    """Horizontal bars grouped by category, one bar per series, all on one scale."""
    if not categories:
        return _empty(chart_id, title, empty)
    top = max((v for s in series for v in s.values if v is not None), default=0.0)
    shown = (fmt(v) for s in series for v in s.values if v is not None)
    area = WIDTH - LABEL_W - _value_room(shown)
    bar = BAR_H * 0.75
    group = bar * len(series) + 10
    height = group * len(categories)
    parts = [_line(LABEL_W, 0, LABEL_W, height, "axis")]
    for i, label in enumerate(categories):
        y0 = i * group + 5
        middle = y0 + bar * len(series) / 2 + 4
        parts.append(_text(LABEL_W - 8, middle, _cut(label), anchor="end"))
        for k, s in enumerate(series):
            value, y = s.values[i], y0 + k * bar
            if value is None:
                parts.append(_text(LABEL_W + 6, y + bar - 2, f"{s.name}: -", "value"))
                continue
            width = area * value / top if top > 0 else 0.0
            tip = f"{label}, {s.name}: {fmt(value)}"
            parts.append(_rect(LABEL_W, y, width, bar - 1, s.css, tip))
            parts.append(_text(LABEL_W + width + 6, y + bar - 2, fmt(value), "value"))

    def shown(value: float | None) -> str:
        return "-" if value is None else fmt(value)

    summary = "; ".join(
        f"{label}: " + ", ".join(f"{s.name} {shown(s.values[i])}" for s in series)
        for i, label in enumerate(categories)
    )
    rows = [[label, *(shown(s.values[i]) for s in series)] for i, label in enumerate(categories)]
    table = _table(["", *(s.name for s in series)], rows)
    return _figure(chart_id, title, summary, parts, height, table, series)


def funnel(
    chart_id: str,
    title: str,
    steps: Sequence[Step],
    *,
    fmt: Format = plain,
    headers: tuple[str, str, str] = ("Stage", "Contacts", "Conversion"),
) -> Markup:
    """Centred bars narrowing step by step, each with its count, and its note (the conversion
    from the step before) on the right."""
    if not steps:
        return _empty(chart_id, title, "No data.")
    top = max(step.value for step in steps)
    label_w, note_w = 110, 150
    area = WIDTH - label_w - note_w
    middle = label_w + area / 2
    row = ROW_H + 4
    parts = []
    for i, step in enumerate(steps):
        y = i * row + 3
        width = max(area * step.value / top if top > 0 else 0.0, 2.0)
        tip = f"{step.label}: {fmt(step.value)}"
        parts.append(_text(label_w - 8, y + BAR_H, step.label, anchor="end"))
        parts.append(_rect(middle - width / 2, y, width, BAR_H + 4, "bar funnel-step", tip))
        shown = fmt(step.value)
        if width > len(shown) * CHAR_W + 8:  # on the bar, else beside it
            parts.append(_text(middle, y + BAR_H - 1, shown, "value on-bar", "middle"))
        else:
            parts.append(_text(middle + width / 2 + 6, y + BAR_H - 1, shown, "value"))
        if step.note:
            parts.append(_text(WIDTH - note_w + 8, y + BAR_H, step.note, "note"))
    summary = "; ".join(f"{s.label}: {fmt(s.value)} {s.note}".strip() for s in steps)
    table = _table(headers, [(s.label, fmt(s.value), s.note or "-") for s in steps])
    return _figure(chart_id, title, summary, parts, len(steps) * row + 4, table)


def nice_top(value: float) -> float:
    """The axis maximum for ``value``: the next 1, 2, 2.5 or 5 times a power of ten that splits
    into four round ticks (3 -> 4, 7 -> 8, 130 -> 200)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value / 4))
    for step in (1, 2, 2.5, 5, 10):
        if step * power * 4 >= value:
            return step * power * 4
    return 40 * power  # not reached: step 10 always fits


def _y_axis(top: float, fmt: Format, plot_h: float) -> list[str]:
    parts = []
    for k in range(5):
        y = PLOT_TOP + plot_h - plot_h * k / 4
        parts.append(_line(PLOT_LEFT, y, WIDTH - PLOT_RIGHT, y, "axis"))
        parts.append(_text(PLOT_LEFT - 6, y + 4, fmt(top * k / 4), anchor="end"))
    return parts


def _x_labels(labels: Sequence[str], centre: Callable[[int], float]) -> list[str]:
    """Dates under the plot: one in ``step``, so they do not overlap, and the last one."""
    step = max(1, math.ceil(len(labels) / X_LABELS))
    shown = [i for i in range(len(labels)) if i % step == 0]
    return [_text(centre(i), TIME_HEIGHT - 6, labels[i], anchor="middle") for i in shown]


def stacked_columns(
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    share: bool = False,
    fmt: Format = plain,
    empty: str = "No data for this range.",
) -> Markup:
    """One column per x value with its series stacked. With ``share`` every column is scaled
    to 100%: the values are counts and the chart shows each one's share of its column."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(x_labels))]
    if not any(totals):
        return _empty(chart_id, title, empty)
    plot_w = WIDTH - PLOT_LEFT - PLOT_RIGHT
    plot_h = TIME_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    slot = plot_w / len(x_labels)
    column = max(slot * 0.75, 1.0)
    top = 1.0 if share else nice_top(max(*totals, 4))  # counts: whole ticks
    parts = _y_axis(top, percent if share else fmt, plot_h)
    for i, label in enumerate(x_labels):
        x = PLOT_LEFT + i * slot + (slot - column) / 2
        bottom = PLOT_TOP + plot_h
        for s in series:
            value = s.values[i] or 0
            if not value:
                continue
            part = value / totals[i] if share else value
            height = plot_h * part / top
            bottom -= height
            tip = f"{label}, {s.name}: {fmt(value)}" + (f" ({percent(part)})" if share else "")
            parts.append(_rect(x, bottom, column, height, s.css, tip))
    parts += _x_labels(x_labels, lambda i: PLOT_LEFT + i * slot + slot / 2)

    def cell(value: float, total: float) -> str:
        if not share:
            return fmt(value)
        return f"{fmt(value)} ({percent(value / total) if total else '-'})"

    rows = [
        [label, *(cell(s.values[i] or 0, totals[i]) for s in series), fmt(totals[i])]
        for i, label in enumerate(x_labels)
    ]
    summary = f"{len(x_labels)} columns, {x_labels[0]} to {x_labels[-1]}; " + ", ".join(
        f"{s.name} {fmt(sum(v or 0 for v in s.values))} in all" for s in series
    )
    table = _table(["", *(s.name for s in series), "Total"], rows)
    return _figure(chart_id, title, summary, parts, TIME_HEIGHT, table, series)


def lines(
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Format = plain,
    max_value: float | None = None,
    empty: str = "No data for this range.",
) -> Markup:
    """One line per series over the x values; a missing value (None) breaks the line."""
    values = [v for s in series for v in s.values if v is not None]
    if not x_labels or not values:
        return _empty(chart_id, title, empty)
    plot_w = WIDTH - PLOT_LEFT - PLOT_RIGHT
    plot_h = TIME_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    top = max_value if max_value is not None else nice_top(max(values))
    slot = plot_w / len(x_labels)

    def x_of(i: int) -> float:
        return PLOT_LEFT + i * slot + slot / 2

    def y_of(value: float) -> float:
        return PLOT_TOP + plot_h - plot_h * value / top

    parts = _y_axis(top, fmt, plot_h)
    for s in series:
        runs: list[list[str]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            runs[-1].append(f"{_n(x_of(i))},{_n(y_of(value))}")
            tip = f"{x_labels[i]}, {s.name}: {fmt(value)}"
            parts.append(
                f'<circle cx="{_n(x_of(i))}" cy="{_n(y_of(value))}" r="2.5" '
                f'class="dot {_e(s.css)}"><title>{_e(tip)}</title></circle>'
            )
        for run in runs:
            if len(run) > 1:
                points = " ".join(run)
                parts.append(f'<polyline points="{points}" class="line {_e(s.css)}"/>')
    parts += _x_labels(x_labels, x_of)
    rows = [
        [label, *("-" if s.values[i] is None else fmt(s.values[i]) for s in series)]
        for i, label in enumerate(x_labels)
    ]
    summary = f"{len(x_labels)} points, {x_labels[0]} to {x_labels[-1]}"
    table = _table(["", *(s.name for s in series)], rows)
    return _figure(chart_id, title, summary, parts, TIME_HEIGHT, table, series)
