"""Chart builders: pure functions from arrays to plotly figures (no Streamlit, no model calls).

Every builder takes plain numpy arrays / lists (see app.record for how they are read from a
flm_core Trajectory) and returns a `plotly.graph_objects.Figure`, so tests can check them directly.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from flm_core.bench import gen_ppl_axis, headline_traces, seconds_axis
from app.bench_table import quality_points
from app.kind_style import KIND_COLOR, kind_label, kind_rank

FONT = dict(family="Inter, Source Sans Pro, sans-serif")
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _layout(fig: go.Figure, title: str | None = None, height: int = 360, big: bool = False) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.01) if title else None, height=height + (60 if big else 0),
                      margin=dict(l=50, r=20, t=50 if title else 20, b=45),
                      font=dict(FONT, size=18 if big else 13),  # the legend sits below the axis titles
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom"))
    return fig


def _hover_token(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", "⏎").replace(" ", "␣"))


# --------------------------------------------------------------------------------------------
# Generate page
# --------------------------------------------------------------------------------------------
def timing_figure(lanes: Sequence[Mapping], big: bool = False) -> go.Figure:
    """Wall time per sample of each lane (log axis), annotated with NFE. lanes: name, kind, seconds, nfe, n, and
    optionally a title to label the lane by (else "<kind label> · <name>")."""
    names = [l.get("title") or f"{kind_label(l['kind'])} · {l['name']}" for l in lanes]
    per_sample = [l["seconds"] / max(l.get("n", 1), 1) for l in lanes]
    fig = go.Figure(go.Bar(
        x=per_sample, y=names, orientation="h", marker_color=[KIND_COLOR.get(l["kind"], "#777") for l in lanes],
        text=[f"{1e3 * s:.0f} ms · {l['nfe']} NFE" for s, l in zip(per_sample, lanes)], textposition="auto",
        hovertemplate="%{y}<br>%{x:.4f} s per sample<extra></extra>"))
    fig.update_xaxes(title="wall time per sample (log scale)", **seconds_axis(per_sample))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Time per sample", height=120 + 45 * len(lanes), big=big)


# --------------------------------------------------------------------------------------------
# Trajectory page
# --------------------------------------------------------------------------------------------
def argmax_grid(argmax: np.ndarray, confidence: np.ndarray, steps: Sequence[int], tokens: Sequence[str],
                changes: np.ndarray | None = None, pending: np.ndarray | None = None,
                current: int | None = None, big: bool = False) -> go.Figure:
    """Positions x recorded steps: colour = top-1 probability, hover = argmax token, x = changed argmax.

    argmax, confidence, changes, pending: (S, L); steps: (S,) sampler step numbers; tokens: id -> string.
    Pending cells (masked / not generated yet) are grey. `current` draws the scrubber's column."""
    argmax = np.asarray(argmax)
    conf = np.asarray(confidence, dtype=float).copy()
    s, length = argmax.shape
    pend = np.zeros_like(argmax, dtype=bool) if pending is None else np.asarray(pending, bool)
    conf[argmax < 0] = np.nan
    shown = np.array([_hover_token(t) for t in tokens] + ["·"], dtype=object)  # index -1 -> "·"
    text = shown[np.where(argmax >= 0, argmax, -1).T]  # an object array, which plotly validates fast (not lists)
    x = list(range(s))
    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        z=np.where(pend, np.nan, conf).T, x=x, y=list(range(length)), text=text, zmin=0, zmax=1,
        colorscale="Viridis", colorbar=dict(title="p(top-1)", thickness=12),
        customdata=np.broadcast_to(np.asarray(steps)[None, :], (length, s)),
        hovertemplate="step %{customdata} · pos %{y}<br>argmax %{text}<br>p=%{z:.3f}<extra></extra>"))
    if pend.any():
        fig.add_trace(go.Heatmap(
            z=np.where(pend, 1.0, np.nan).T, x=x, y=list(range(length)), showscale=False,
            colorscale=[[0, "#d9d9d9"], [1, "#d9d9d9"]], hovertemplate="pos %{y}: pending<extra></extra>"))
    if changes is not None and np.asarray(changes).any():
        cs, cl = np.nonzero(np.asarray(changes))
        fig.add_trace(go.Scattergl(x=cs, y=cl, mode="markers", name="argmax changed",
                                   marker=dict(symbol="x-thin", size=5, line=dict(width=1, color="#ff4b4b")),
                                   hoverinfo="skip"))
    if current is not None:
        fig.add_vline(x=current, line=dict(color="white", width=2, dash="dot"))
    tick = max(1, s // 12)
    fig.update_xaxes(title="recorded step", tickvals=x[::tick], ticktext=[str(v) for v in list(steps)[::tick]])
    fig.update_yaxes(title="position", autorange="reversed")
    fig.update_layout(showlegend=False)
    return _layout(fig, "Argmax per position and step (colour: confidence, ✕: argmax changed)",
                   height=max(300, min(700, 8 * length + 120)), big=big)


def simplex_figure(prediction: Mapping[str, np.ndarray], progress: Sequence[float], current: int | None = None,
                   state: Mapping[str, np.ndarray] | None = None, jump: bool = False,
                   labels: tuple[str, str] = ("final", "runner-up"), big: bool = False) -> go.Figure:
    """Ternary plot of one position's path: mass on {final token, runner-up, rest} per recorded step, coloured
    by the run's progress t (0 at the start, 1 at the finished sample).

    prediction / state: dicts from simplex.ternary_path / state_ternary (final, runner, rest, bound, valid).
    jump: a one-step run, drawn as a single arrow from the uninformed start (all mass on 'rest')."""
    t = np.asarray(progress, dtype=float)
    fig = go.Figure()
    ok = np.asarray(prediction["valid"], bool)
    bound = np.asarray(prediction.get("bound", np.zeros_like(ok)), bool)
    a, b, c = (np.asarray(prediction[k], float) for k in ("final", "runner", "rest"))
    if jump and ok.any():
        i = int(np.nonzero(ok)[0][-1])
        fig.add_trace(go.Scatterternary(a=[0, a[i]], b=[0, b[i]], c=[1, c[i]], mode="lines+markers",
                                        name="one network call", line=dict(color="#d62728", width=3, dash="dash"),
                                        marker=dict(size=[10, 16], symbol=["circle-open", "star"])))
    else:
        fig.add_trace(go.Scatterternary(
            a=a[ok], b=b[ok], c=c[ok], mode="lines+markers", name="prediction (softmax)",
            line=dict(color="#888", width=1),
            marker=dict(size=8, color=t[ok], colorscale="Plasma", cmin=0, cmax=1,
                        symbol=np.where(bound[ok], "triangle-down-open", "circle"),
                        colorbar=dict(title="t", thickness=10, x=1.02)),
            customdata=np.stack([t[ok], bound[ok]], -1) if ok.any() else None,
            hovertemplate="t=%{customdata[0]:.3f}<br>final %{a:.3f}<br>runner-up %{b:.3f}<br>rest %{c:.3f}"
                          "<extra></extra>"))
    if state is not None and np.asarray(state["valid"]).any():
        sv = np.asarray(state["valid"], bool)
        fig.add_trace(go.Scatterternary(
            a=np.asarray(state["final"])[sv], b=np.asarray(state["runner"])[sv], c=np.asarray(state["rest"])[sv],
            mode="lines+markers", name="noisy state (shifted coordinates)",
            line=dict(color="#17becf", width=2), marker=dict(size=5, color="#17becf")))
    if current is not None and 0 <= current < len(a) and ok[current]:
        fig.add_trace(go.Scatterternary(a=[a[current]], b=[b[current]], c=[c[current]], mode="markers",
                                        name="current step", marker=dict(size=18, symbol="circle-open",
                                                                         line=dict(width=3, color="black"))))
    fig.update_layout(ternary=dict(sum=1, aaxis=dict(title=labels[0], min=0), baxis=dict(title=labels[1], min=0),
                                   caxis=dict(title="rest", min=0)), showlegend=True)
    _layout(fig, "Simplex view of the chosen position", height=470, big=big)
    side, legend = (95, 150) if big else (60, 110)  # room for the corner labels beside and above the legend
    fig.update_layout(margin=dict(l=side, r=side, t=95, b=legend))
    return fig


def decoding_error_figure(progress: Sequence[float], gamma: Sequence[float], not_final: Sequence[float],
                          theory: Sequence[float] | None = None, pending: Sequence[float] | None = None,
                          current: int | None = None, big: bool = False, state_error: Sequence[float] | None = None,
                          label: str = "prediction argmax ≠ final",
                          pending_label: str = "pending (masked / to do)") -> go.Figure:
    """Share of positions whose argmax is not yet final, vs the run's progress t (the flows' model time) and
    vs noise level g.

    theory: 1 - q(g) at the recorded g (the state's own argmax on the ideal path), from flm_core.schedule;
    state_error: the same share measured on the sampler's own states (flow models).
    pending: a second curve (discrete models: prediction argmax ≠ final, since their tokens are sampled).
    The g panel is left empty for discrete models (g is NaN)."""
    t, g, err = (np.asarray(v, float) for v in (progress, gamma, not_final))
    has_g = np.isfinite(g).any()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("vs model time t", "vs noise level g" if has_g else
                                                        "vs g (no g: discrete model)"))
    for col, x in ((1, t), (2, g)):
        if col == 2 and not has_g:
            continue
        fig.add_trace(go.Scatter(x=x, y=err, mode="lines+markers", name=label,
                                 line=dict(color="#d62728"), marker=dict(size=5), showlegend=col == 1), 1, col)
        if theory is not None and has_g:
            fig.add_trace(go.Scatter(x=x, y=np.asarray(theory, float), mode="lines", name="theory 1-q(g): state argmax",
                                     line=dict(color="#555", dash="dash"), showlegend=col == 1), 1, col)
        if state_error is not None and has_g:
            fig.add_trace(go.Scatter(x=x, y=np.asarray(state_error, float), mode="lines+markers",
                                     name="state argmax ≠ final (measured)", line=dict(color="#555"),
                                     marker=dict(size=4), showlegend=col == 1), 1, col)
        if pending is not None and np.asarray(pending).any():
            fig.add_trace(go.Scatter(x=x, y=np.asarray(pending, float), mode="lines", name=pending_label,
                                     line=dict(color="#2ca02c", dash="dot"), showlegend=col == 1), 1, col)
        if current is not None and 0 <= current < len(x) and np.isfinite(x[current]):
            fig.add_trace(go.Scatter(x=[x[current]], y=[err[current]], mode="markers", name="current",
                                     marker=dict(size=14, symbol="circle-open", color="black", line=dict(width=2)),
                                     showlegend=False), 1, col)
        fig.update_xaxes(title="t" if col == 1 else "g", range=[-0.02, 1.02], row=1, col=col)
    fig.update_yaxes(title="share of positions", range=[-0.02, 1.02], row=1, col=1)
    return _layout(fig, "Decoding error over time", height=360, big=big)


def sketch_map_figure(points: np.ndarray, vertices: np.ndarray, progress: Sequence[float],
                      current: int | None = None, highlight: int | None = None, method: str = "PCA",
                      big: bool = False, max_points: int = 6000) -> go.Figure:
    """All positions' prediction sketches over the steps (points (S, L, 2), colour: progress t) and the
    token vertices P[final token] (vertices (L, 2)); `highlight` draws one position's track.
    Beyond `max_points` the background cloud keeps evenly spaced steps (keeps scrubbing light)."""
    pts = np.asarray(points, np.float32)
    s, length, _ = pts.shape
    keep = np.arange(s)
    if s * length > max_points:  # background cloud: evenly spaced steps (current step and track stay exact)
        keep = np.unique(np.round(np.linspace(0, s - 1, max(2, max_points // length))).astype(int))
    tt = np.repeat(np.asarray(progress, np.float32)[keep, None], length, axis=1)
    pos = np.repeat(np.arange(length)[None, :], len(keep), axis=0)
    flat = pts[keep].reshape(-1, 2)
    ok = np.isfinite(flat).all(axis=1)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        x=flat[ok, 0], y=flat[ok, 1], mode="markers", name="predictions",
        marker=dict(size=4, color=tt.reshape(-1)[ok], colorscale="Plasma", cmin=0, cmax=1, opacity=0.55,
                    colorbar=dict(title="t", thickness=10)),
        customdata=np.stack([pos.reshape(-1)[ok].astype(np.float32), tt.reshape(-1)[ok]], -1),
        hovertemplate="pos %{customdata[0]} · t=%{customdata[1]:.3f}<extra></extra>"))
    v = np.asarray(vertices, np.float32)
    fig.add_trace(go.Scattergl(x=v[:, 0], y=v[:, 1], mode="markers", name="token vertices P[final]",
                               marker=dict(size=9, symbol="x", color="black"),
                               customdata=np.arange(len(v)), hovertemplate="vertex of pos %{customdata}<extra></extra>"))
    if current is not None and 0 <= current < s:
        cur = pts[current]
        good = np.isfinite(cur).all(axis=1)
        fig.add_trace(go.Scattergl(x=cur[good, 0], y=cur[good, 1], mode="markers", name="current step",
                                   marker=dict(size=7, color="rgba(0,0,0,0)", line=dict(width=1.5, color="#111"))))
    if highlight is not None and 0 <= highlight < length:
        track = pts[:, highlight]
        good = np.isfinite(track).all(axis=1)
        fig.add_trace(go.Scatter(x=np.r_[track[good, 0], v[highlight, 0]], y=np.r_[track[good, 1], v[highlight, 1]],
                                 mode="lines", name=f"position {highlight}", line=dict(color="#d62728", width=2)))
    fig.update_xaxes(title=f"{method} 1")
    fig.update_yaxes(title=f"{method} 2", scaleanchor="x", scaleratio=1)
    return _layout(fig, f"Prediction sketches converging to token vertices ({method})", height=430, big=big)


# --------------------------------------------------------------------------------------------
# Time page
# --------------------------------------------------------------------------------------------
def schedule_figure(curves: Mapping[int, Mapping[str, np.ndarray]], model_k: int | None = None,
                    grid: Mapping[str, np.ndarray] | None = None, big: bool = False) -> go.Figure:
    """alpha(g) and decoding error 1-q(g) for several vocabulary sizes K, with a sampler grid.

    curves: K -> {"gamma", "alpha", "error"}; grid: {"t", "gamma", "error"} for the model's K."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("model clock t = α(g)", "decoding error 1 - q(g)"))
    palette = ["#636efa", "#8c564b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692"]  # red: the grid
    for i, (k, curve) in enumerate(sorted(curves.items())):
        main = k == model_k
        style = dict(color="#111" if main else palette[i % len(palette)], width=3.5 if main else 1.8)
        name = f"K = {k}" + (" (this model)" if main else "")
        fig.add_trace(go.Scatter(x=curve["gamma"], y=curve["alpha"], mode="lines", name=name, line=style,
                                 legendgroup=str(k)), 1, 1)
        fig.add_trace(go.Scatter(x=curve["gamma"], y=curve["error"], mode="lines", name=name, line=style,
                                 legendgroup=str(k), showlegend=False), 1, 2)
    if grid is not None:
        n = len(grid["t"]) - 1
        marker = dict(size=max(4.0, 8.0 * min(1.0, (16 / n) ** 0.5)), color="#d62728", symbol="diamond-open")
        fig.add_trace(go.Scatter(x=grid["gamma"], y=grid["t"], mode="markers", name=f"sampler grid ({n} steps)",
                                 marker=marker), 1, 1)  # open and smaller for many steps: the curve shows through
        fig.add_trace(go.Scatter(x=grid["gamma"], y=grid["error"], mode="markers", showlegend=False,
                                 marker=marker), 1, 2)
    for col in (1, 2):
        fig.update_xaxes(title="noise level g (0 = noise, 1 = data)", range=[0, 1], row=1, col=col)
    fig.update_yaxes(title="t", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title="1 - q", range=[0, 1.02], row=1, col=2)
    return _layout(fig, None, height=420, big=big)


# --------------------------------------------------------------------------------------------
# Benchmarks and training
# --------------------------------------------------------------------------------------------
def benchmark_figure(rows: Sequence[Mapping], session: Sequence[Mapping] = (), big: bool = False) -> go.Figure:
    """Gen PPL vs time per sample (log-log) from benchmark rows, drawn by flm_core.bench.headline_traces (as the
    CLI's chart: the models' lines, degenerate settings flagged, the AR that scores itself marked, real text's
    Gen PPL as a dashed line); session runs (timing only, no PPL) as ticks in a strip below sharing the time
    axis, one labelled row per kind. Only the panels with data are drawn: rows with a Gen PPL (quality_points)
    or session runs, at least one of the two."""
    has_ppl = bool(quality_points(rows))
    panels = (["ppl"] if has_ppl else []) + (["session"] if session else [])
    if not panels:
        raise ValueError("nothing to draw: no benchmark row with a Gen PPL and no session run")
    row = {name: i + 1 for i, name in enumerate(panels)}
    kinds = sorted({r["kind"] for r in session}, key=kind_rank)
    strip = 0.12 + 0.06 * len(kinds)  # room for one labelled row per kind
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[1 - strip, strip] if len(panels) == 2 else None)
    colors = {kind: KIND_COLOR.get(kind, "#777") for kind in {r["kind"] for r in rows}}
    for trace in headline_traces(rows, colors) if has_ppl else []:
        fig.add_trace(trace, row["ppl"], 1)
    for kind in kinds:
        mine = [r for r in session if r["kind"] == kind]
        fig.add_trace(go.Scatter(
            x=[r["seconds_per_sample"] for r in mine], y=[kind_label(kind)] * len(mine),
            mode="markers", name=f"your {kind_label(kind)} runs", showlegend=False,
            marker=dict(symbol="line-ns-open", size=18, line=dict(width=3), color=KIND_COLOR.get(kind, "#777")),
            customdata=[[r["model"], r["steps"], r["nfe"]] for r in mine],
            hovertemplate="%{customdata[0]} · %{customdata[1]} steps · NFE %{customdata[2]}<br>"
                          "%{x:.4f} s/sample (no PPL)<extra></extra>"), row["session"], 1)
    if session:
        labels = [kind_label(k) for k in kinds]
        fig.update_yaxes(type="category", categoryorder="array", categoryarray=labels, tickvals=labels,
                         ticktext=labels, range=[-0.6, len(labels) - 0.4], row=row["session"], col=1)
    axis = seconds_axis([r.get("seconds_per_sample") for r in rows] + [r.get("seconds_per_sample") for r in session])
    for i in row.values():
        fig.update_xaxes(row=i, col=1, **axis, **({"title": "time per sample (log scale)"} if i == len(panels) else {}))
    if has_ppl:
        fig.update_yaxes(title="Gen PPL (log, lower is better)", row=row["ppl"], col=1,
                         **gen_ppl_axis([r.get("gen_ppl") for r in rows]))
        return _layout(fig, "Quality vs speed (labels: sampling steps)" + ("; below: your runs this session"
                                                                        if session else ""),
                       height=(560 + 30 * len(kinds)) if session else 480, big=big)
    return _layout(fig, "Your runs: time per sample (no Gen PPL without a benchmark)",
                   height=160 + 40 * len(kinds), big=big)


def training_figure(logs: Mapping[str, Sequence[Mapping]], metrics: Sequence[str], big: bool = False,
                    kinds: Mapping[str, str] | None = None) -> go.Figure:
    """Loss curves: one panel per metric, one colour per checkpoint, train solid / val dashed. The first
    checkpoint of each kind (kinds: name -> kind) takes the kind's colour of the other pages."""
    metrics = list(metrics) or ["nll"]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=metrics)
    colors, taken = {}, set()
    for name in logs:
        color = KIND_COLOR.get((kinds or {}).get(name, ""))
        if color and color not in taken:
            colors[name] = color
            taken.add(color)
    spare = [c for c in PALETTE if c not in KIND_COLOR.values()] + [c for c in PALETTE if c not in taken]
    for i, name in enumerate([n for n in logs if n not in colors]):
        colors[name] = spare[i % len(spare)]
    for name, records in logs.items():
        color = colors[name]
        shown: set[str] = set()
        for col, metric in enumerate(metrics, start=1):
            for split, dash in (("train", "solid"), ("val", "dash")):
                pts = [(r["step"], r[metric]) for r in records
                       if r.get("split", "train") == split and isinstance(r.get(metric), (int, float))
                       and isinstance(r.get("step"), (int, float))]
                if not pts:
                    continue
                x, y = zip(*sorted(pts))
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers" if len(x) < 30 else "lines",
                                         name=f"{name} ({split})", legendgroup=name, line=dict(color=color, dash=dash),
                                         showlegend=split not in shown), 1, col)
                shown.add(split)
            fig.update_xaxes(title="step", row=1, col=col)
    return _layout(fig, None, height=420, big=big)
