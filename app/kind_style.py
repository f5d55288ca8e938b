"""How the app shows a model kind: its label (from the table in flm_core.kinds) and its colour."""
from __future__ import annotations

from flm_core.kinds import KINDS

# Colour of each kind on every page; the key order is also the order the pickers list kinds in.
KIND_COLOR = {"fmlm": "#d62728", "flm": "#1f77b4", "mdlm": "#2ca02c", "ar": "#9467bd"}


def kind_label(kind: str | None) -> str:
    """The table's label ("FLM" for "flm"); a name outside the table (a benchmark's "data" row) as it is."""
    return KINDS[kind].label if kind in KINDS else str(kind)


def kind_rank(kind: str | None) -> int:
    """Place of a kind in the pickers' order (KIND_COLOR's keys); other names after them."""
    order = list(KIND_COLOR)
    return order.index(kind) if kind in order else len(order)
