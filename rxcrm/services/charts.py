"""Plotly figures of the analytics page (plain Plotly, no Reflex): one look for all charts —
labels in the person's language (`words`), stage colours, thin-space thousands, no grid
clutter, no legend unless several series."""
from __future__ import annotations

import plotly.graph_objects as go

from . import fmt

FONT = dict(family="Inter, -apple-system, 'Segoe UI', Roboto, sans-serif", size=12, color="#333c48")
GRID = "#eef1f4"
# The words inside the figures; the page passes them in the person's language (`words=`),
# keyed as here (the catalog holds them as `analytics.chart.<key>`).
WORDS = {"from_prev": "от пред.", "pieces": "шт.", "of_prev": "из предыдущей",
         "click": "Нажмите, чтобы открыть список", "percentile": "90-й перцентиль",
         "percentile_hover": "90% переходов быстрее", "median": "Медиана", "median_hover": "медиана",
         "days": "дн.", "new_leads": "Новые лиды", "new_deals": "Новые сделки", "won": "Выиграно",
         "lost": "Проиграно"}
SERIES = {"new_leads": "#39a8ef", "new_deals": "#55d0e0", "won": "#7bd500", "lost": "#ff5752"}
# Plotly's mode bar: only "save as PNG" (no zoom/pan/lasso clutter), no Plotly logo.
CONFIG = {"displaylogo": False, "modeBarButtons": [["toImage"]], "displayModeBar": "hover",
          "toImageButtonOptions": {"filename": "rxcrm-analytics", "scale": 2}}


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    # template "none": our own look below, and no 7 KB copy of Plotly's default theme in
    # every figure the browser receives
    base = dict(template="none", height=height, margin=dict(l=8, r=16, t=8, b=8), font=FONT,
                paper_bgcolor="rgba(0,0,0,0)",
                plot_bgcolor="rgba(0,0,0,0)", showlegend=False, separators=",\u202f", hoverlabel=dict(font=FONT))
    fig.update_layout(**(base | kw))
    return fig


def empty() -> go.Figure:
    """A figure with nothing yet (the state's value before the first load)."""
    return go.Figure(layout={"template": "none"})


def _words(words: dict[str, str] | None) -> dict[str, str]:
    return WORDS | (words or {})


def funnel(names: list[str], counts: list[int], amounts: list[float], colors: list[str],
           conv_prev: list[str], entity: str, words: dict[str, str] | None = None) -> go.Figure:
    """Stages top to bottom; inside the bar: the count (short, readable even in a narrow bar);
    under the stage name: the amount and the conversion from the previous stage."""
    w = _words(words)
    amount_on = entity == "deal" or any(amounts)
    second = [" · ".join(x for x in ((fmt.amount(a) if amount_on else ""),
                                     (f"{c} {w['from_prev']}" if c else "")) if x)
              for a, c in zip(amounts, conv_prev)]
    ticks = [f"{name}<br><span style='font-size:11px;color:#7a8795'>{sub}</span>" if sub else name
             for name, sub in zip(names, second)]
    hover = [f"<b>{name}</b><br>{fmt.count(n)} {w['pieces']}" + (f" · {fmt.amount(a)}" if amount_on else "")
             + (f"<br>{w['of_prev']}: {c}" if c else "") + f"<br><i>{w['click']}</i>"
             for name, n, a, c in zip(names, counts, amounts, conv_prev)]
    fig = go.Figure(go.Funnel(
        y=names, x=counts, text=[fmt.count(n) for n in counts], textinfo="text",
        # a bar too narrow for its number shows it beside the bar instead of shrinking it
        textposition=["inside" if n >= 0.1 * max(counts) else "outside" for n in counts] if counts else "inside",
        insidetextanchor="middle", hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
        marker=dict(color=colors, line=dict(width=0)), connector=dict(fillcolor="#f1f4f7", line=dict(width=0)),
        textfont=dict(color="#1f2d3d", size=13)))
    return _layout(fig, 56 + 50 * len(names), hovermode="closest",
                   yaxis=dict(automargin=True, tickfont=dict(size=12), tickvals=names, ticktext=ticks))


def stage_times(names: list[str], medians: list[float | None], p90s: list[float | None],
                colors: list[str], words: dict[str, str] | None = None) -> go.Figure:
    """Horizontal bars: median days (stage colour) with the 90th percentile as a light bar."""
    w = _words(words)
    days = w["days"]
    med = [m or 0 for m in medians]
    p90 = [p or 0 for p in p90s]
    fig = go.Figure()
    fig.add_bar(y=names, x=p90, orientation="h", name=w["percentile"], marker=dict(color="#dfe6ed"),
                hovertemplate=f"%{{y}}<br>{w['percentile_hover']} %{{x:.1f}} {days}<extra></extra>")
    fig.add_bar(y=names, x=med, orientation="h", name=w["median"], marker=dict(color=colors), width=0.45,
                text=[f"{fmt.number(m)} {days}" if m else "" for m in med], textposition="outside", cliponaxis=False,
                hovertemplate=f"%{{y}}<br>{w['median_hover']} %{{x:.1f}} {days}<extra></extra>")
    return _layout(fig, 80 + 40 * len(names), barmode="overlay", showlegend=True,
                   legend=dict(orientation="h", y=1.02, x=0, yanchor="bottom", traceorder="reversed"),
                   margin=dict(l=8, r=40, t=30, b=8),
                   xaxis=dict(gridcolor=GRID, zeroline=False, ticksuffix=f" {days}"),
                   yaxis=dict(automargin=True, autorange="reversed"))


def dynamics(labels: list[str], series: dict[str, list[int]], words: dict[str, str] | None = None) -> go.Figure:
    w = _words(words)
    fig = go.Figure()
    for key, values in series.items():
        name = w[key]
        fig.add_bar(x=labels, y=values, name=name, marker=dict(color=SERIES[key]),
                    hovertemplate=f"%{{x}}<br>{name}: %{{y}}<extra></extra>")
    return _layout(fig, 300, barmode="group", bargap=0.25, showlegend=True,
                   legend=dict(orientation="h", y=1.12, x=0),
                   yaxis=dict(gridcolor=GRID, zeroline=False, rangemode="tozero"),
                   xaxis=dict(tickangle=0, automargin=True))


def lost_reasons(reasons: list[str], counts: list[int]) -> go.Figure:
    fig = go.Figure(go.Bar(y=reasons, x=counts, orientation="h", marker=dict(color="#ff8f8c"),
                           text=[fmt.count(n) for n in counts], textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x}<extra></extra>"))
    return _layout(fig, 56 + 32 * max(1, len(reasons)), xaxis=dict(gridcolor=GRID, zeroline=False),
                   yaxis=dict(automargin=True, autorange="reversed"))
