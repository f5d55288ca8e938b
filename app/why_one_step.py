"""The words of the "Why one step works" page, built from what this click measured: pure functions.

A lane is a dict {"title", "kind", "valid", "grammatical", "n", "distinct", "failures"}: a one-step run of a toy
checkpoint, its count of valid samples, of samples that follow the grammar (whatever the agreements between
words), of distinct samples and of samples per first broken constraint (app.toy_marks).
Every comparison sentence is chosen by the measured counts, never assumed: where the flow map does not keep
more samples valid than the factorised sampler, the page says so.
"""
from __future__ import annotations

from typing import Sequence

from flm_core.kinds import kind_of


def role(kind: str) -> str:
    """"factorised" (a discrete sampler with a step count: MDLM), "flow map" (two times: FMLM) or "flow" (FLM);
    "other" for a kind with fixed steps (AR), which has no one-step sampler."""
    spec = kind_of(kind)
    if spec.fixed_steps:
        return "other"
    if spec.discrete:
        return "factorised"
    return "flow map" if spec.two_times else "flow"


def _count(lane: dict) -> str:
    return f"{lane['valid']} of {lane['n']} valid, {lane['grammatical']} grammatical"


def headline(lanes: Sequence[dict], seed: int) -> str:
    """'One network call each, seed 0: MDLM@1 · mdlm-toy 1 of 8 valid · FMLM@1 · fmlm-toy 7 of 8 valid'."""
    return (f"One network call each, seed {seed}: "
            + " · ".join(f"{lane['title']} **{_count(lane)}**" for lane in lanes))


def _top_failure(lane: dict) -> str:
    if not lane["failures"]:
        return ""
    name, count = next(iter(lane["failures"].items()))
    return f"; its most frequent first break: {name} ({count} of {lane['n']})"


def _share(lane: dict, key: str) -> float:
    return lane[key] / max(lane["n"], 1)


def _comparison(factorised: dict, flow_map: dict) -> str:
    f, m = _share(flow_map, "valid"), _share(factorised, "valid")
    if f > m:
        return (f"Here the flow map kept {_count(flow_map)} where the factorised sampler kept "
                f"{factorised['valid']} of {factorised['n']}.")
    if f == m and _share(flow_map, "grammatical") > _share(factorised, "grammatical"):
        return (f"Here neither kept more stories valid ({flow_map['valid']} and {factorised['valid']} of "
                f"{flow_map['n']}), but the flow map kept the grammar in {flow_map['grammatical']} where the "
                f"factorised sampler kept it in {factorised['grammatical']}: one call kept the story's layout, "
                "these checkpoints not yet the agreements between its words.")
    if f == m:
        return (f"Here both kept the same share ({_count(flow_map)}): at this seed these checkpoints show no "
                "difference.")
    return (f"Here the flow map did not keep more samples valid ({flow_map['valid']} of {flow_map['n']} against "
            f"{factorised['valid']} of {factorised['n']}): these checkpoints do not show the argument at this seed.")


def explanation(lanes: Sequence[dict]) -> str:
    """The factorisation argument, one paragraph per lane present, with the lanes' measured counts."""
    by_role = {role(lane["kind"]): lane for lane in reversed(lanes)}  # the first lane of each role
    parts = []
    if (lane := by_role.get("factorised")) is not None:
        parts.append(f"**{lane['title']}: {_count(lane)}{_top_failure(lane)}.** From an all-masked sequence its one "
                     "step unmasks every position at once, each drawn independently from that position's own "
                     "marginal: the sample comes from the product of the marginals, $p(x_1) \\cdots p(x_L)$, not "
                     "from the joint $p(x_1, \\dots, x_L)$. Each word can be likely where it stands, yet positions that the language "
                     "ties together (e.g. a name and its later pronoun) agree only by chance.")
    if (lane := by_role.get("flow map")) is not None:
        parts.append(f"**{lane['title']}: {_count(lane)}{_top_failure(lane)}.** Its one call maps the whole noise "
                     "(L × K numbers) to the whole sequence at once. The flow it was distilled from moves a "
                     "superposition of whole sequences, and the noise selects one of them, so every position is "
                     "decoded from the same choice: given the noise, the positions are not independent.")
    if (lane := by_role.get("flow")) is not None:
        same = (f"all {lane['n']} the same sample" if lane["distinct"] == 1 else
                f"{lane['distinct']} distinct of {lane['n']}")
        parts.append(f"**{lane['title']}: {_count(lane)}, {same}.** One Euler step from pure noise "
                     "returns the argmax of the denoiser's guess at t = 0, where nothing is decodable yet: close "
                     "to each position's marginal, the likeliest word at each position on its own. The flow needs "
                     "its many steps; the flow map is trained to land where they end.")
    if "factorised" in by_role and "flow map" in by_role:
        parts.append(_comparison(by_role["factorised"], by_role["flow map"]))
    return "\n\n".join(parts)
