"""The toy world's benchmark figure: validity and distance against wall time and network calls.

Four panels share one legend: validity (top) and distance (bottom), against seconds per sample (left,
log) and network calls (right, log). One line per model through its step counts, each point labelled
with its steps; the generator's own documents (the data row) draw the reference lines: validity 1 and
the distance's finite-sample floor.
"""
from __future__ import annotations

import math
from typing import Sequence

from flm_core.kinds import KINDS

PANELS = (("toy_validity", "seconds_per_sample", 1, 1), ("toy_validity", "nfe", 1, 2),
          ("toy_distance", "seconds_per_sample", 2, 1), ("toy_distance", "nfe", 2, 2))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def toy_figure(rows: Sequence[dict], colors: dict[str, str] | None = None):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=2, shared_yaxes=True, horizontal_spacing=0.06, vertical_spacing=0.14,
                        subplot_titles=("validity vs time", "validity vs network calls",
                                        "distance to the true law vs time", "distance vs network calls"))
    models = list(dict.fromkeys((r["kind"], r["model"]) for r in rows if r["kind"] in KINDS))
    data = next((r for r in rows if r["kind"] == "data"), None)
    for i, (kind, model) in enumerate(models):
        points = sorted((r for r in rows if r["model"] == model), key=lambda r: r.get("steps") or 0)
        for y, x, row, col in PANELS:
            shown = [r for r in points if _finite(r.get(x)) and _finite(r.get(y))]
            fig.add_trace(go.Scatter(
                x=[r[x] for r in shown], y=[r[y] for r in shown], mode="lines+markers+text",
                name=f"{KINDS[kind].label} · {model}", legendgroup=model, showlegend=(row, col) == (1, 1),
                line=dict(color=(colors or {}).get(kind)), text=[str(r.get("steps")) for r in shown],
                textposition="top center", cliponaxis=False,
                hovertext=[f"{model} · {r.get('steps')} steps · NFE {r.get('nfe')}<br>validity {r['toy_validity']:.3f}"
                           f" · distance {r['toy_distance']:.3f}<br>{r['seconds_per_sample']:.2e} s/sample"
                           for r in shown], hoverinfo="text"), row=row, col=col)
    if data is not None:
        for y, level in (("toy_validity", 1), ("toy_distance", 2)):
            fig.add_hline(y=data[y], line=dict(dash="dash", color="gray"), row=level, col=1)
            fig.add_hline(y=data[y], line=dict(dash="dash", color="gray"), row=level, col=2,
                          annotation_text="generator")
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text="seconds per sample (log)", row=2, col=1)
    fig.update_xaxes(title_text="network calls (log)", row=2, col=2)
    fig.update_yaxes(title_text="valid samples", range=[-0.02, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="distance (0 = the true law)", rangemode="tozero", row=2, col=1)
    fig.update_layout(title="Toy language: validity and distance vs time and network calls (labels: steps)",
                      template="plotly_white", legend_title_text="model", height=700)
    return fig
