"""Time: the model clock t = alpha(g) and the decoding error 1 - q(g) for several vocabulary sizes."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from flm_core.schedule import STEP_GRID, alpha_from_gamma, decoding_error, uniform_time_grid
from app import charts, common

STANDARD_K = (3, 64, 2048, 30522)

big = common.big()
st.title("Time")
st.markdown(
    "A token is a one-hot vertex e(x) in R^K, noised as **x_g = (1 − g)·ε + g·e(x)**. The noisy state's own argmax "
    "is already the right token with probability **q(g) = E_z[Φ(z + g/(1−g))^(K−1)]**, which climbs from chance (1/K) "
    "to 1 — and the larger the vocabulary, the later it climbs. FLM's network clock is "
    "**t = α(g) = K/(K−1)·(q(g) − 1/K)**, the share of tokens decodable beyond chance. Samplers step *uniformly in t* "
    "(red diamonds): the steps bunch up where tokens are actually being decided, so the decoding error falls "
    "linearly in t for every K. All curves come from `flm_core.schedule`.")


@st.cache_data(show_spinner=False)
def curve(k: int, points: int = 400) -> dict[str, np.ndarray]:
    gamma = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    return {"gamma": gamma.numpy(), "alpha": alpha_from_gamma(gamma, k).numpy(),
            "error": decoding_error(gamma, k).numpy()}


infos = common.usable(common.catalog())
flow = [c for c in infos if not c.spec.discrete]  # the models on this clock
c1, c2, c3 = st.columns([2, 1, 1])
with c1:
    info = common.checkpoint_selector("Model (its K and grid)", flow, key="time_ckpt",
                                      prefer=lambda kind: not kind.two_times) if flow else None
    if info is None:
        st.caption("No flow checkpoint found: showing the standard vocabulary sizes only.")
model_k = info.vocab_size if info else None
common.defaults(time_steps=8, time_k=256)
steps = c2.select_slider("Sampler steps", STEP_GRID[:8], key="time_steps")
extra = c3.number_input("Another K", min_value=3, max_value=1_000_000, step=1, key="time_k")

ks = sorted({*STANDARD_K, int(extra), *( [model_k] if model_k else [])})
with common.guard("Schedule"):
    curves = {k: curve(k) for k in ks}
    grid_k = model_k or 2048
    t, g = uniform_time_grid(int(steps), grid_k)
    grid = {"t": t.numpy(), "gamma": g.numpy(), "error": decoding_error(g.double(), grid_k).numpy()}
    st.plotly_chart(charts.schedule_figure(curves, model_k=model_k, grid=grid, big=big), key="chart_schedule")
    st.caption(f"Grid: {steps} steps uniform in t for K = {grid_k}"
               + (" (this model)" if model_k else " (no model chosen)") + ". Thick black: this model's K.")
    rows = [{"step": i, "t": float(t[i]), "g": float(g[i]), "decoding error 1−q": float(grid["error"][i])}
            for i in range(len(t))]
    with st.expander("Grid values"):
        st.dataframe(rows, hide_index=True)
