"""FLM Explorer: `streamlit run app/main.py`.

Real runs of the checkpoints under $FLM_EXPLORER_CHECKPOINTS (default ./checkpoints), through
flm_core only. Pages: Generate (home), Why one step works (toy language), Trajectory, Time, Benchmarks,
Training.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts only app/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import authors_panel, catalogue, common  # noqa: E402
from flm_core.errors import one_line  # noqa: E402

common.start_presentation_from_url()
st.set_page_config(page_title="FLM Explorer", page_icon=":material/waves:", layout="wide",
                   initial_sidebar_state="collapsed" if common.big() else "auto")

PAGES = ROOT / "app" / "views"  # not pages/: that name turns on legacy page discovery
pages = [
    st.Page(PAGES / "generate.py", title="Generate", icon=":material/auto_awesome:", default=True, url_path="generate"),
    st.Page(PAGES / "one_step.py", title="Why one step works", icon=":material/join:", url_path="one-step"),
    st.Page(PAGES / "trajectory.py", title="Trajectory", icon=":material/timeline:", url_path="trajectory"),
    st.Page(PAGES / "time_schedule.py", title="Time", icon=":material/schedule:", url_path="time"),
    st.Page(PAGES / "benchmarks.py", title="Benchmarks", icon=":material/leaderboard:", url_path="benchmarks"),
    st.Page(PAGES / "training.py", title="Training", icon=":material/show_chart:", url_path="training"),
]
page = st.navigation(pages)
common.keep_settings()


def add_path() -> None:
    """Callback of the sidebar's path box: accept only existing checkpoint directories."""
    text = st.session_state.get("user_path", "")
    try:
        path = catalogue.validate_user_path(text, catalogue.allowed_roots(repo_root=common.REPO_ROOT))
        info = catalogue.describe_checkpoint(path)
        if info.error:
            raise ValueError(info.error)
        common.load_pipeline(info.path, info.mtime)  # incompatible weights fail here, once
    except Exception as err:  # noqa: BLE001 - shown as a message, never a traceback
        st.session_state["path_error"] = one_line(err)
        return
    st.session_state.pop("path_error", None)
    extra = st.session_state.setdefault("extra_paths", [])
    if str(path) not in extra:
        extra.append(str(path))
    st.session_state["user_path"] = ""


with st.sidebar:
    st.toggle("Presentation mode", key="presentation",
              help="Large type for talks: after Generate the settings fold away and the speedup and texts fill the "
                   "first screen; the Trajectory page plays by itself. The URL keeps it (?presentation=1), so a "
                   "reload keeps it too. Keys: G generates, P plays / pauses.")
    infos = common.catalog()
    good = common.usable(infos)
    roots = ", ".join(str(r) for r in catalogue.checkpoint_roots(repo_root=common.REPO_ROOT))
    st.caption(f"**{len(good)} checkpoint{'s' if len(good) != 1 else ''}** in {roots}")
    with st.expander("Checkpoints", expanded=not good):
        for c in infos:
            if c.error:
                st.warning(f"{c.name}: {c.error}")
            else:
                st.markdown(f"- **{c.label}** · K={c.vocab_size} · L={c.seq_len}")
        st.text_input("Add a checkpoint folder", key="user_path", on_change=add_path,
                      placeholder="path/to/checkpoint_dir", help="A directory with config.json, "
                      "model.safetensors and tokenizer.json (press Enter).")
        if st.session_state.get("path_error"):
            st.error(st.session_state["path_error"])
    authors_panel.section()

common.presentation_to_url()
common.apply_style()
page.run()
