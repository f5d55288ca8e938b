"""Training: loss curves of each checkpoint from its metrics.jsonl."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from flm_core.cards import read_card_data
from flm_core.checkpoint import CARD_FILE
from flm_core.train import training_log
from app import charts, common
from app.metric_names import LOSS_KEYS, numeric_keys
from app.training_log import exported_step, up_to, weights_note

big = common.big()
st.title("Training")
st.caption("The log (metrics.jsonl, `flm_core.train.training_log`) of the run that made each checkpoint's weights, up "
           "to the step they were exported at (the card data's last stage): solid = train, dashed = validation. "
           "FLM/MDLM/AR report the per-token NLL; FMLM distillation reports its consistency KL (the authors' two "
           "stages: their squared errors, consistency_mse and map_mse).")

infos = common.usable(common.catalog())
if not infos:
    st.info("No checkpoints found.")
    st.stop()

by_path = {c.path: c for c in infos}
common.kept_choices("train_ckpts", by_path, list(by_path))
chosen = st.multiselect("Checkpoints", list(by_path), format_func=lambda p: by_path[p].label, key="train_ckpts")
beyond = st.toggle("Show the log beyond the exported weights", key="train_beyond",
                   help="Some runs trained on after their weights were exported (the AR: its validation loss rose, so "
                        "an earlier step was shipped). Those steps made no shipped weights.")
logs: dict[str, list[dict]] = {}
notes: list[str] = []
for p in chosen:
    with common.guard(f"Reading {by_path[p].name}"):
        records = training_log(p)
        card = read_card_data(p)
        if records:
            logs[by_path[p].label] = records if beyond else up_to(records, exported_step(card))
            notes.append(weights_note(card, records, by_path[p].label))

if not chosen:
    st.info("Choose at least one checkpoint.")
    st.stop()
if not logs:
    st.info("None of the chosen checkpoints has a metrics.jsonl yet.")
    st.stop()

keys = []
for records in logs.values():
    keys += [k for k in numeric_keys(records) if k not in keys]
default = [k for k in LOSS_KEYS if k in keys] or keys[:1]
common.kept_choices("train_metrics", keys, default)
metrics = st.multiselect("Metrics", keys, key="train_metrics")
if not metrics:
    st.info("Choose at least one metric.")
    st.stop()
kinds = {by_path[p].label: by_path[p].kind for p in chosen}
st.plotly_chart(charts.training_figure(logs, metrics, big=big, kinds=kinds), key="chart_training")
for note in notes:
    st.markdown(note)

summary = []
for label, records in logs.items():
    last = {split: next((r for r in reversed(records) if r.get("split") == split), {}) for split in ("train", "val")}
    summary.append({"checkpoint": label, "last step shown": max((r.get("step", 0) for r in records), default=0),
                    **{f"{split} {m}": last[split].get(m) for split in ("train", "val") for m in metrics}})
st.dataframe(summary, hide_index=True)

for p in chosen:
    card = Path(p) / CARD_FILE
    if card.is_file():
        with st.expander(f"Model card · {by_path[p].name}"):
            st.markdown(card.read_text(encoding="utf-8", errors="replace"))
