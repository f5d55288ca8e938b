"""The sidebar's "Authors' checkpoints": the released models with their sizes, cached or a Download button.

A download runs in the script thread with an st.progress bar (bytes of the whole checkpoint), then the app
reruns, so the checkpoint joins every model list (app.catalogue.authors_checkpoints). Failures are one line.
"""
from __future__ import annotations

import streamlit as st
from huggingface_hub import constants

from app.kind_style import kind_label
from flm_core.authors import AUTHORS, AuthorsCheckpoint
from flm_core.download import DownloadError, authors_folder, fetch_authors

ERROR_KEY = "authors_download_error"


def _download(entry: AuthorsCheckpoint) -> None:
    bar = st.progress(0.0, text=f"{entry.name}: starting…")

    def show(done: int, total: int) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=f"{entry.name}: {done / 1e6:.0f} of {total / 1e6:.0f} MB")

    try:
        fetch_authors(entry, show)
    except DownloadError as err:
        st.session_state[ERROR_KEY] = str(err)
        return
    st.session_state.pop(ERROR_KEY, None)
    st.rerun()


def section() -> None:
    """One line per released checkpoint; offline, one line with the command instead of the buttons."""
    with st.expander("Authors' checkpoints", expanded=False):
        offline = constants.HF_HUB_OFFLINE
        if offline:
            st.caption("Offline (HF_HUB_OFFLINE is set): on a machine with internet run `python -m flm_core download "
                       "all`, then copy the models--david3684--* folders of its ~/.cache/huggingface/hub into "
                       f"{constants.HF_HUB_CACHE}.")
        for entry in AUTHORS:
            cached = authors_folder(entry) is not None
            st.markdown(f"**{kind_label(entry.kind)} · {entry.name}** · {entry.dataset}, L={entry.seq_len} · "
                        f"{entry.size_label}" + (" · in the cache" if cached else ""))
            if not cached and not offline and st.button("Download", key=f"download::{entry.repo_id}",
                                                        icon=":material/download:"):
                _download(entry)
        if st.session_state.get(ERROR_KEY):
            st.error(st.session_state[ERROR_KEY])
