"""Autoguidance (models/guided.py, Pipeline.set_guide / guided_sampler): guided logits against a hand
combination, guided sampling against an independent dense Euler loop, w = 1 as the model alone, honest
network-call counts, and one-line refusals."""
import json
from pathlib import Path

import pytest
import torch

from flm_core.models import build_network
from flm_core.models.guided import GuidedDenoiser
from flm_core.pipeline import Pipeline, load
from flm_core.schedule import gamma_from_alpha

L, B = 12, 3
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pair(tokenizer, make_config, randomize):
    """A strong FLM and a narrower weak FLM (hidden 16 vs 32) with random weights, the weak one as the guide."""
    def pipe(kind, seed, **shape):
        config = make_config(kind, tokenizer.get_vocab_size(), seq_len=L, **shape)
        return Pipeline(config, randomize(build_network(config.model), seed=seed), tokenizer)

    strong, weak = pipe("flm", 1), pipe("flm", 2, hidden_size=16, cond_dim=8)
    strong.set_guide(weak)
    return {"strong": strong, "weak": weak, "make": pipe}


def test_guided_logits_are_the_hand_combination_dense_and_low_rank(pair):
    strong, weak = pair["strong"].network, pair["weak"].network
    x = torch.randn(B, L, pair["strong"].vocab_size, generator=torch.Generator().manual_seed(0))
    s = torch.full((B,), 0.3)
    with torch.no_grad():
        hand = weak(x, s) + 2.5 * (strong(x, s) - weak(x, s))
        guided = GuidedDenoiser(strong, weak, 2.5)
        torch.testing.assert_close(guided(x, s), hand, rtol=0, atol=1e-5)
        h = guided.vocab_embed(x)  # x @ [E_strong | E_weak]
        assert h.shape == (B, L, strong.config.hidden_size + weak.config.hidden_size)
        torch.testing.assert_close(guided.forward_embedded(h, s), hand, rtol=0, atol=1e-4)


def reference_guided(pair, steps: int, seed: int, w: float) -> torch.Tensor:
    """The last D of an independent dense Euler loop on softmax(l_weak + w (l_strong - l_weak)); a
    self-conditioned strong network reads the previous D (zeros first), and so does a self-conditioned guide."""
    strong, weak = pair["strong"].network, pair["weak"].network
    k = pair["strong"].vocab_size
    z = torch.randn(B, L, k, generator=torch.Generator().manual_seed(seed))
    t = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    g = gamma_from_alpha(t, k).float()
    d = torch.zeros_like(z)

    def fed(net) -> dict:  # the sampler feeds a self-conditioned strong network, and the guide where it can read it
        return {"estimate": d} if strong.config.self_condition and net.config.self_condition else {}
    with torch.no_grad():
        for i in range(steps):
            s = torch.full((B,), float(t[i]))
            l_weak = weak(z, s, **fed(weak))
            d = torch.softmax(l_weak + w * (strong(z, s, **fed(strong)) - l_weak), -1)
            z = z + (g[i + 1] - g[i]) / (1 - g[i]) * (d - z)  # Euler; the last step lands on d
    return d


def test_guided_sampling_equals_an_independent_loop(pair):
    d = reference_guided(pair, steps=5, seed=4, w=2.0)
    recorded = pair["strong"].generate(B, 5, seed=4, record=True, guidance=2.0)  # dense state
    assert torch.equal(recorded.tokens, d.argmax(-1))
    torch.testing.assert_close(recorded.trajectory.top_probs[-1],
                               d.topk(recorded.trajectory.top_probs.shape[-1], -1).values, rtol=0, atol=1e-5)
    low_rank = pair["strong"].generate(B, 5, seed=4, guidance=2.0)  # h = x @ [E_strong | E_weak]
    assert torch.equal(low_rank.tokens, d.argmax(-1))
    assert (recorded.guidance, recorded.guide) == (2.0, pair["weak"].path)


@pytest.mark.parametrize("guide_self_conditioned", [False, True])
def test_a_self_conditioned_model_guided_feeds_back_the_guided_prediction(pair, guide_self_conditioned):
    """The guided D is fed back to the strong network, and to the guide only where it is self-conditioned
    (a plain guide gets no estimate)."""
    strong = pair["make"]("flm", 11, self_condition=True)
    weak = pair["make"]("flm", 12, hidden_size=16, cond_dim=8, self_condition=guide_self_conditioned)
    strong.set_guide(weak)
    d = reference_guided({"strong": strong, "weak": weak}, steps=4, seed=2, w=2.0)
    for record in (False, True):
        gen = strong.generate(B, 4, seed=2, record=record, guidance=2.0)
        assert torch.equal(gen.tokens, d.argmax(-1)) and gen.nfe == 8


def count_calls(network) -> tuple[list, callable]:
    calls = []
    handle = network.output_layer.register_forward_pre_hook(lambda *a: calls.append(1))
    return calls, handle.remove


def test_weight_one_is_the_model_alone_and_nfe_counts_both_networks(pair):
    strong, weak = pair["strong"], pair["weak"]
    alone = Pipeline(strong.config, strong.network, strong.tokenizer)  # the same network, no guide loaded
    strong_calls, undo_strong = count_calls(strong.network)
    weak_calls, undo_weak = count_calls(weak.network)
    try:
        one = strong.generate(B, 6, seed=3, guidance=1.0)
        assert (len(strong_calls), len(weak_calls), one.nfe) == (6, 0, 6)
        guided = strong.generate(B, 6, seed=3, guidance=3.0)
        assert (len(strong_calls), len(weak_calls), guided.nfe) == (12, 6, 12)
    finally:
        undo_strong()
        undo_weak()
    assert torch.equal(one.tokens, alone.generate(B, 6, seed=3).tokens) and one.guide is None
    assert not torch.equal(guided.tokens, one.tokens)


def test_weight_zero_is_the_guide_alone(pair):
    weak_alone = pair["weak"].generate(B, 4, seed=5, record=True).trajectory.top_probs[-1]
    guided = pair["strong"].generate(B, 4, seed=5, record=True, guidance=0.0).trajectory.top_probs[-1]
    torch.testing.assert_close(guided, weak_alone, rtol=0, atol=1e-5)


def test_a_flow_map_is_guided_by_a_flow_map_at_both_times(pair):
    strong, weak = pair["make"]("fmlm", 3), pair["make"]("fmlm", 4, hidden_size=16, cond_dim=8)
    strong.set_guide(weak)
    x = torch.randn(B, L, strong.vocab_size, generator=torch.Generator().manual_seed(1))
    s, t = torch.full((B,), 0.2), torch.full((B,), 0.7)
    with torch.no_grad():
        hand = weak.network(x, s, t) + 1.5 * (strong.network(x, s, t) - weak.network(x, s, t))
        torch.testing.assert_close(GuidedDenoiser(strong.network, weak.network, 1.5)(x, s, t), hand, rtol=0, atol=1e-5)
    assert strong.generate(B, 1, seed=0, guidance=1.5).nfe == 2


def test_refusals_are_one_line_and_say_what_to_do(pair):
    make = pair["make"]
    with pytest.raises(ValueError, match="guide it with a weaker FMLM"):
        make("fmlm", 5).set_guide(pair["weak"])
    for kind in ("mdlm", "ar"):
        with pytest.raises(ValueError, match="autoguidance applies to flows"):
            make(kind, 6).set_guide(pair["weak"])
    with pytest.raises(ValueError, match="does not share the tokenizer and length"):
        make("flm", 7).set_guide(Pipeline(*_other_length(pair)))
    with pytest.raises(ValueError, match=r"needs a guide model: load it with load\(path, guide=DIR\)"):
        make("flm", 8).generate(B, 2, guidance=2.0)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="guidance must be a finite w >= 0"):
            pair["strong"].generate(B, 2, guidance=bad)


def _other_length(pair):
    config = pair["make"]("flm", 9).config
    config.model.seq_len = L + 4
    return config, build_network(config.model), pair["strong"].tokenizer


def test_load_takes_a_guide_and_checks_its_vocabulary(flm_checkpoint):
    pipe = load(flm_checkpoint, guide=flm_checkpoint)
    gen = pipe.generate(2, 3, seed=0, guidance=2.0)
    assert gen.guide == str(flm_checkpoint) and gen.nfe == 6
    with pytest.raises(ValueError, match="does not share the tokenizer"):  # K = 2048, another tokenizer
        load(flm_checkpoint, guide=REPO / "checkpoints" / "flm-wiki")


def test_sample_evaluate_and_bench_take_a_guide(flm_checkpoint, tiny_data, capsys):
    from flm_core import bench
    from flm_core.cli import main

    args = ["sample", "--checkpoint", str(flm_checkpoint), "--steps", "3", "--num-samples", "2", "--json"]
    assert main(args) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*args, "--guide", str(flm_checkpoint), "--guidance", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["token_ids"] == plain["token_ids"]  # w = 1: the model alone
    assert main([*args, "--guide", str(flm_checkpoint), "--guidance", "3"]) == 0
    guided = json.loads(capsys.readouterr().out)
    assert (guided["nfe"], guided["guidance"], guided["guide"]) == (6, 3.0, str(flm_checkpoint))
    ar = REPO / "checkpoints" / "ar-wiki"
    assert main([*args[:2], str(ar), "--guide", str(flm_checkpoint), "--guidance", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: autoguidance applies to flows")
    result = bench.evaluate_checkpoint(str(flm_checkpoint), str(tiny_data), steps=2, num_samples=2, mauve=False,
                                       guide=str(flm_checkpoint), guidance=2.0)
    assert (result["nfe"], result["guidance"], result["guide"]) == (4, 2.0, str(flm_checkpoint))
    result = bench.run_bench([str(flm_checkpoint)], str(tiny_data), steps=[2], num_samples=2, repeats=1, mauve=False,
                             guide=str(flm_checkpoint), guidance=2.0)
    row = result["rows"][0]
    assert (row["nfe"], row["guidance"], row["guide"]) == (4, 2.0, str(flm_checkpoint))
    assert f"Flow sampler: guided by `{flm_checkpoint}` at w 2 (rows of its kind)." in bench.markdown_table(result)
