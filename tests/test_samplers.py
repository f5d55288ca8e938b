"""One contract test over every sampler kind, plus per-kind checks, on tiny random networks."""
import math

import pytest
import torch

from conftest import EstimateSpy
from flm_core.models import build_network
from flm_core.pipeline import Generation, Pipeline
from flm_core.samplers import run_sampler
from flm_core.schedule import gamma_from_alpha
from flm_core.tokens import MASK_ID, SEP_ID
from flm_core.trajectory import MAX_RECORDED_STEPS, SKETCH_DIM, Recorder, Trajectory

KINDS = ["flm", "fmlm", "mdlm", "ar"]
L, B = 12, 3
TRAJECTORY_FIELDS = ("step", "progress", "gamma", "argmax", "top_ids", "top_probs", "entropy", "state_at_top",
                     "prediction_sketch", "pending", "final_tokens")


@pytest.fixture(scope="module")
def pipes(tokenizer, make_config, randomize):
    """One Pipeline per kind around a tiny network with random weights (seeded)."""
    out = {}
    for i, kind in enumerate(KINDS):
        config = make_config(kind, tokenizer.get_vocab_size(), seq_len=L)
        out[kind] = Pipeline(config, randomize(build_network(config.model), seed=10 + i), tokenizer)
    return out


def count_network_calls(pipe):
    """Count the sampler's network calls (AR samplers call forward_cached directly; flows may enter the
    DiT after its input projection, so count its output layer)."""
    calls = []
    net = pipe.network
    if pipe.kind == "ar":
        original = net.forward_cached
        net.forward_cached = lambda *a, **k: (calls.append(1), original(*a, **k))[1]
        return calls, lambda: delattr(net, "forward_cached")
    handle = net.output_layer.register_forward_pre_hook(lambda *a: calls.append(1))  # once per network call
    return calls, handle.remove


def expected_nfe(kind: str, steps: int) -> int:
    return L - 1 if kind == "ar" else steps


@pytest.mark.parametrize("kind", KINDS)
def test_sampler_contract(pipes, kind):
    pipe = pipes[kind]
    k = pipe.vocab_size
    steps = 5
    calls, undo = count_network_calls(pipe)
    progress = []
    try:
        gen = pipe.generate(B, steps, seed=0, progress=lambda i, n: progress.append((i, n)))
    finally:
        undo()
    n = expected_nfe(kind, steps)
    # output
    assert isinstance(gen, Generation) and gen.kind == kind
    assert gen.tokens.shape == (B, L) and gen.tokens.dtype == torch.int64
    assert int(gen.tokens.min()) >= 0 and int(gen.tokens.max()) < k
    assert isinstance(gen.texts, list) and len(gen.texts) == B and all(isinstance(t, str) for t in gen.texts)
    assert gen.seconds > 0 and gen.trajectory is None and gen.device == "cpu"
    # network function evaluations
    assert gen.nfe == n == len(calls) and gen.steps == n
    assert progress == [(i + 1, n) for i in range(n)]
    # determinism
    again = pipe.generate(B, steps, seed=0)
    other = pipe.generate(B, steps, seed=1)
    assert torch.equal(again.tokens, gen.tokens) and again.texts == gen.texts
    assert not torch.equal(other.tokens, gen.tokens)
    # recording does not change the draws
    recorded = pipe.generate(B, steps, seed=0, record=True)
    assert torch.equal(recorded.tokens, gen.tokens)
    check_trajectory(recorded.trajectory, kind, n, k, recorded.tokens)


def check_trajectory(tr: Trajectory, kind: str, n: int, k: int, tokens: torch.Tensor) -> None:
    s = tr.step.shape[0]
    top = min(8, k)
    assert 1 <= s <= MAX_RECORDED_STEPS
    assert tr.step[-1].item() == n - 1 and tr.step[0].item() == 0
    assert bool((tr.step[1:] > tr.step[:-1]).all())
    shapes = {"progress": (s,), "gamma": (s,), "argmax": (s, B, L), "top_ids": (s, B, L, top),
              "top_probs": (s, B, L, top), "entropy": (s, B, L), "state_at_top": (s, B, L, top),
              "prediction_sketch": (s, B, L, SKETCH_DIM),
              "pending": (s, B, L), "final_tokens": (B, L)}
    for name, shape in shapes.items():
        assert tuple(getattr(tr, name).shape) == shape, name
    for name in TRAJECTORY_FIELDS:
        assert k not in getattr(tr, name).shape, name  # nothing grows with the vocabulary
    assert torch.equal(tr.final_tokens, tokens)
    assert tr.pending.dtype == torch.bool
    if kind == "ar":  # positions not yet predicted keep their placeholders
        seen = tr.argmax[-1, :, 1:]
    else:
        seen = tr.argmax[-1]
    assert bool((seen >= 0).all()) and bool((seen < k).all())
    probs = tr.top_probs[-1]
    assert bool((probs[..., :-1] >= probs[..., 1:]).all()) and bool((probs.sum(-1) <= 1 + 1e-5).all())
    assert torch.equal(tr.top_ids[..., 0], tr.argmax)
    finite = torch.isfinite(tr.entropy)
    assert bool((tr.entropy[finite] >= -1e-5).all()) and bool((tr.entropy[finite] <= math.log(k) + 1e-4).all())
    # progress has one meaning for every sampler: 0 at the start state, rising towards 1
    assert tr.progress[0] == 0 and bool((tr.progress[1:] > tr.progress[:-1]).all()) and tr.progress[-1] < 1
    assert not tr.pending[-1].any()  # pending is read after each step: nothing is left after the last
    assert bool((tr.pending[1:] <= tr.pending[:-1]).all())  # a written position stays written
    if kind in ("flm", "fmlm"):
        assert torch.equal(tr.argmax[-1], tokens)  # tokens are the argmax of the last prediction
        assert bool((tr.gamma[1:] > tr.gamma[:-1]).all()) and tr.gamma[0] == 0
        torch.testing.assert_close(tr.progress, tr.step / n)  # the flows' progress is the model time t_i
        assert torch.isfinite(tr.state_at_top).all() and bool((tr.state_argmax >= 0).all())
        assert not tr.pending.any()
    else:
        assert bool((tr.state_argmax == -1).all()) and torch.isnan(tr.gamma).all()


@pytest.mark.parametrize("kind", ["flm", "fmlm", "mdlm"])
def test_long_runs_record_at_most_256_steps_including_the_last(pipes, kind):
    pipe = pipes[kind]
    gen = pipe.generate(1, 301, seed=0, record=True)
    tr = gen.trajectory
    assert gen.nfe == 301
    assert 100 < tr.step.shape[0] <= MAX_RECORDED_STEPS and tr.step[-1].item() == 300
    assert tr.argmax.shape[1:] == (1, L)


def trajectory_bytes(tr: Trajectory) -> int:
    return sum(getattr(tr, name).numel() * getattr(tr, name).element_size() for name in TRAJECTORY_FIELDS)


@pytest.mark.parametrize("kind", KINDS)
def test_trajectory_memory_does_not_depend_on_vocabulary_size(kind, make_config, randomize):
    sizes = []
    for k in (64, 640):
        config = make_config(kind, k, seq_len=L)
        net = randomize(build_network(config.model), seed=1).eval()
        pipe = Pipeline(config, net, tokenizer=None)
        n = pipe.sampler.num_steps(4)
        recorder = Recorder(n, B, L, k)
        tokens, _ = run_sampler(pipe.sampler, B, 4, torch.Generator().manual_seed(0), torch.device("cpu"), recorder)
        tr = recorder.finish(tokens)
        check_trajectory(tr, kind, n, k, tokens)
        sizes.append(trajectory_bytes(tr))
    assert sizes[0] == sizes[1]


# ------------------------------------------------------------------ per kind


@pytest.mark.parametrize("kind", ["flm", "fmlm"])
def test_flow_sampler_last_state_is_the_final_prediction(pipes, kind):
    pipe = pipes[kind]
    sampler, steps = pipe.sampler, 4
    plan = sampler.plan(steps, torch.device("cpu"))
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        state = sampler.init_state(B, plan, generator, torch.device("cpu"))
        for i in range(steps):
            state, out = sampler.step(state, i, plan, generator)
    assert out.gamma < 1 and plan.g_host[-1] == 1
    torch.testing.assert_close(state.x, out.probs, rtol=0, atol=1e-6)
    assert torch.equal(sampler.tokens(state), out.probs.argmax(-1))
    assert torch.equal(sampler.tokens(state), pipe.generate(B, steps, seed=3).tokens)


def dense_noise(pipe, batch: int, seed: int) -> torch.Tensor:
    """The x_0 that generate(seed=seed) starts from: K-wide Gaussian noise from the seed alone."""
    return torch.randn(batch, L, pipe.vocab_size, generator=torch.Generator().manual_seed(seed))


def reference_euler(pipe, steps: int, seed: int, held: tuple[list[int], list[int]] | None = None) -> torch.Tensor:
    """The last D of an independent Euler loop, z <- z + (g_{i+1} - g_i) (D(z, t_i) - z) / (1 - g_i) on
    t_i = i / steps, that re-imposes x_g = (1 - g) eps + g e(id) at held (positions, ids) after each step.
    A self-conditioned network also reads the previous D (zeros first)."""
    k = pipe.vocab_size
    eps = dense_noise(pipe, B, seed)
    z = eps.clone()
    t = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    g = gamma_from_alpha(t, k)
    d = torch.zeros_like(z)
    with torch.no_grad():
        for i in range(steps):
            fed = {"estimate": d} if pipe.config.model.self_condition else {}
            d = torch.softmax(pipe.network(z, torch.full((B,), float(t[i])), **fed), -1)
            z = z + float((g[i + 1] - g[i]) / (1 - g[i])) * (d - z)
            if held is not None:
                positions, ids = held
                e = torch.nn.functional.one_hot(torch.tensor(ids), k).float()
                z[:, positions] = float(1 - g[i + 1]) * eps[:, positions] + float(g[i + 1]) * e
    return d


def test_flm_sampler_equals_an_independent_euler_loop(pipes):
    """Tokens = argmax of the last D of the Euler loop."""
    pipe, steps = pipes["flm"], 6
    d = reference_euler(pipe, steps, seed=5)
    assert torch.equal(pipe.generate(B, steps, seed=5).tokens, d.argmax(-1))
    assert torch.equal(pipe.generate(B, steps, seed=5, record=True).tokens, d.argmax(-1))


def test_fmlm_one_step_is_argmax_of_delta_from_noise_zero_to_one(pipes):
    pipe = pipes["fmlm"]
    eps = dense_noise(pipe, B, seed=6)
    with torch.no_grad():
        delta = torch.softmax(pipe.network(eps, torch.zeros(B), torch.ones(B)), -1)
    assert torch.equal(pipe.generate(B, 1, seed=6).tokens, delta.argmax(-1))
    assert torch.equal(pipe.logits(eps, 0.0, 1.0), pipe.network(eps, torch.zeros(B), torch.ones(B)))


@pytest.mark.parametrize("kind", ["flm", "fmlm"])
def test_low_rank_state_is_the_projection_of_the_dense_state(pipes, kind):
    """Unrecorded runs evolve h = x @ E; recorded runs evolve x. Same seed: h_i == x_i @ E at every step."""
    pipe, steps, dev = pipes[kind], 5, torch.device("cpu")
    sampler = pipe.sampler
    low, dense = sampler.plan(steps, dev), sampler.plan(steps, dev, dense=True)
    h = sampler.init_state(B, low, torch.Generator().manual_seed(9), dev)
    x = sampler.init_state(B, dense, torch.Generator().manual_seed(9), dev)
    embedding = pipe.network.vocab_embed.embedding.detach()
    assert h.x.shape == (B, L, embedding.shape[1]) and x.x.shape == (B, L, pipe.vocab_size)
    with torch.no_grad():
        for i in range(steps):
            torch.testing.assert_close(x.x @ embedding, h.x, rtol=0, atol=2e-5)
            h, out_low = sampler.step(h, i, low, None)
            x, out_dense = sampler.step(x, i, dense, None)
            torch.testing.assert_close(out_low.probs, out_dense.probs, rtol=0, atol=1e-5)
    assert torch.equal(sampler.tokens(h), sampler.tokens(x))


def test_flm_and_fmlm_given_one_seed_start_from_the_same_noise(pipes):
    """The app compares FLM and FMLM runs of one seed position by position: their x_0 must be the same
    draw even though their embeddings differ (h_0 = eps @ E of each model)."""
    dev = torch.device("cpu")
    starts = {}
    for kind in ("flm", "fmlm"):
        sampler = pipes[kind].sampler
        h = sampler.init_state(B, sampler.plan(1, dev), torch.Generator().manual_seed(4), dev).x
        x = sampler.init_state(B, sampler.plan(1, dev, dense=True), torch.Generator().manual_seed(4), dev).x
        torch.testing.assert_close(h, x @ pipes[kind].network.vocab_embed.embedding.detach())
        starts[kind] = x
    assert torch.equal(starts["flm"], starts["fmlm"])
    assert torch.equal(starts["flm"], dense_noise(pipes["flm"], B, seed=4))


def test_categorical_sample_matches_the_probabilities_and_never_draws_zero_probability_ids():
    from flm_core.samplers import categorical_sample

    probs = torch.tensor([0.0, 0.5, 0.0, 0.3, 0.2, 0.0])
    draws = categorical_sample(probs.expand(200_000, -1), torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=6).double()
    assert counts[[0, 2, 5]].sum() == 0
    expected = probs.double() * draws.numel()
    chi2 = ((counts[[1, 3, 4]] - expected[[1, 3, 4]]) ** 2 / expected[[1, 3, 4]]).sum()
    assert chi2 < 13.8  # 99.9% quantile of chi-square with 2 degrees of freedom
    one_hot = torch.zeros(3, 4, 6)
    one_hot[..., 4] = 1.0
    assert (categorical_sample(one_hot, torch.Generator().manual_seed(1)) == 4).all()


@pytest.mark.parametrize("steps", [1, 3, 16])
def test_mdlm_final_tokens_hold_no_mask(pipes, steps):
    gen = pipes["mdlm"].generate(4, steps, seed=steps)
    assert not (gen.tokens == MASK_ID).any()
    assert gen.nfe == steps


def test_ar_starts_with_separator_and_ignores_steps(pipes):
    pipe = pipes["ar"]
    a, b = pipe.generate(B, 2, seed=0), pipe.generate(B, 50, seed=0)
    assert bool((a.tokens[:, 0] == SEP_ID).all())
    assert a.nfe == b.nfe == L - 1 and torch.equal(a.tokens, b.tokens)


def test_generate_rejects_bad_arguments(pipes):
    pipe = pipes["flm"]
    for args in ((0, 4), (2, 0), (5000, 4), (2, -1)):
        with pytest.raises(ValueError):
            pipe.generate(*args)


def test_recorded_entropy_and_state_statistics_match_direct_computations():
    from flm_core.samplers import Step

    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 5, 40, generator=g) * torch.tensor([0.1, 1.0, 4.0, 9.0, 30.0]).view(1, 5, 1)
    logits[0, 0, 3] = float("-inf")  # a masked id (MDLM's SUBS)
    probs = torch.softmax(logits, -1)
    state = torch.randn(2, 5, 40, generator=g)
    recorder = Recorder(1, 2, 5, 40)
    recorder.update(0, Step(logits, probs, 0.0, 0.0), state, torch.zeros(2, 5, dtype=torch.bool))
    tr = recorder.finish(probs.argmax(-1))
    reference = torch.distributions.Categorical(logits=logits.double()).entropy().float()
    torch.testing.assert_close(tr.entropy[0], reference, rtol=0, atol=2e-5)
    assert torch.equal(tr.state_argmax[0], state.argmax(-1))
    torch.testing.assert_close(tr.state_at_top[0], state.gather(-1, probs.topk(8, -1).indices))


# ------------------------------------------------------------------ held tokens (a prompt)
def held_positions(pipe, prefix: str, suffix: str) -> tuple[list[int], list[int]]:
    held = pipe.held_tokens(prefix, suffix)
    return held.positions.tolist(), held.ids.tolist()


@pytest.mark.parametrize("kind", KINDS)
def test_every_sampler_keeps_the_prompt_and_records_the_same_run(pipes, kind):
    pipe = pipes[kind]
    positions, ids = held_positions(pipe, "ab", "c")
    assert positions[0] == 0 and ids[0] == SEP_ID and positions[-1] == L - 1  # document start, then the prefix
    for steps in (1, 4):
        gen = pipe.generate(B, steps, seed=2, prefix="ab", suffix="c")
        assert (gen.tokens[:, positions] == torch.tensor(ids)).all()
        assert gen.held.tolist() == [i in positions for i in range(L)]
        assert torch.equal(pipe.generate(B, steps, seed=2, prefix="ab", suffix="c", record=True).tokens, gen.tokens)
    assert pipe.generate(B, 4, seed=2).held is None


def test_flow_prompt_is_replacement_on_the_noising_path(pipes):
    """An independent Euler loop that re-imposes x_g = (1 - g) eps + g e(id) at the held positions after each
    step gives the sampler's tokens."""
    pipe, steps = pipes["flm"], 5
    positions, ids = held_positions(pipe, "abc", "")
    d = reference_euler(pipe, steps, seed=8, held=(positions, ids))
    expected = d.argmax(-1)
    expected[:, positions] = torch.tensor(ids)
    assert torch.equal(pipe.generate(B, steps, seed=8, prefix="abc").tokens, expected)
    # The last prediction itself, from the dense state (recorded: at the free positions, since the record
    # shows held ones as certain) and from h = x @ E (unrecorded run).
    free = [i for i in range(L) if i not in positions]
    recorded = pipe.generate(B, steps, seed=8, prefix="abc", record=True).trajectory.top_probs[-1][:, free]
    torch.testing.assert_close(recorded.float(), d[:, free].topk(recorded.shape[-1], -1).values, rtol=0, atol=1e-5)
    outputs = []
    handle = pipe.network.output_layer.register_forward_hook(lambda module, args, out: outputs.append(out))
    pipe.generate(B, steps, seed=8, prefix="abc")
    handle.remove()
    torch.testing.assert_close(torch.softmax(outputs[-1].float(), -1), d, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["flm", "fmlm"])
def test_a_one_step_flow_cannot_see_the_prompt_and_more_steps_can(pipes, kind):
    """At g = 0 the held positions are pure noise, so one step writes the prompt in and leaves the rest as
    the unconditional run; from the second call on the network sees it."""
    pipe = pipes[kind]
    positions, _ = held_positions(pipe, "abcd", "")
    free = [i for i in range(L) if i not in positions]
    one, plain_one = pipe.generate(B, 1, seed=3, prefix="abcd"), pipe.generate(B, 1, seed=3)
    assert torch.equal(one.tokens[:, free], plain_one.tokens[:, free])
    many, plain_many = pipe.generate(B, 8, seed=3, prefix="abcd"), pipe.generate(B, 8, seed=3)
    assert not torch.equal(many.tokens[:, free], plain_many.tokens[:, free])


def test_mdlm_prompt_is_never_masked_and_ar_writes_it_when_it_gets_there(pipes):
    mdlm = pipes["mdlm"].generate(B, 6, seed=1, prefix="ab", suffix="cd", record=True)
    held, first_pending = mdlm.held, mdlm.trajectory.pending[0]
    assert not mdlm.trajectory.pending[:, :, held].any()
    # after one of six steps each free position is still masked with probability 5/6
    assert 0.5 < first_pending[:, ~held].float().mean() < 1
    ar, plain = pipes["ar"].generate(B, 1, seed=1, prefix="ab"), pipes["ar"].generate(B, 1, seed=1)
    start = int(pipes["ar"].held_tokens("ab", "").positions[-1]) + 1
    assert not torch.equal(ar.tokens[:, start:], plain.tokens[:, start:])  # what follows sees the prompt


def test_an_ending_that_starts_a_word_gets_its_space(pipes):
    pipe = pipes["flm"]
    encode = lambda text: pipe.tokenizer.encode(text, add_special_tokens=False).ids  # noqa: E731
    assert pipe.held_tokens("", "ab").ids.tolist() == encode(" ab") != encode("ab")
    assert pipe.held_tokens("", ".").ids.tolist() == encode(".")
    assert pipe.held_tokens("", " ab").ids.tolist() == encode(" ab")


def test_a_prompt_longer_than_the_sample_is_a_one_line_error(pipes):
    with pytest.raises(ValueError, match="shorten the prefix or the suffix"):
        pipes["flm"].generate(1, 2, prefix="a" * 40)


@pytest.mark.parametrize("kind", KINDS)
def test_held_positions_are_recorded_as_the_tokens_the_sampler_used(pipes, kind):
    """The record shows what the sampler used: a held token, certain, wherever the prompt holds one."""
    gen = pipes[kind].generate(B, 3, seed=2, prefix="ab", suffix="cd", record=True)
    tr, held = gen.trajectory, gen.held
    ids = gen.tokens[:, held].expand(tr.argmax.shape[0], -1, -1)
    written = ~tr.pending[:, :, held]  # an AR has not written its ending before it gets there
    assert bool(written.all()) != (kind == "ar") and bool(written[-1].all())
    assert torch.equal(tr.argmax[:, :, held][written], ids[written])
    assert bool((tr.top_probs[:, :, held, 0][written] == 1).all())
    assert bool((tr.top_probs[:, :, held, 1:][written] == 0).all()) and bool((tr.entropy[:, :, held][written] == 0).all())
    if kind == "ar":  # not yet written: whatever the record held there before, not the held token as certain
        assert not bool((tr.top_probs[:, :, held, 0][~written] == 1).all())
    assert torch.equal(gen.tokens[:, held], pipes[kind].held_tokens("ab", "cd").ids.expand(B, -1))


# ------------------------------------------------------------------ self-conditioning


def test_a_self_conditioned_flm_reads_the_previous_prediction_at_no_extra_call(tokenizer, make_config, randomize):
    """Zeros at the first call, then the previous call's D (as D @ E where the run keeps h = x @ E); one call
    per step; recorded and unrecorded runs agree with an independent dense loop that feeds D back."""
    config = make_config("flm", tokenizer.get_vocab_size(), seq_len=L, self_condition=True)
    spy = EstimateSpy(randomize(build_network(config.model), seed=21))
    pipe, steps = Pipeline(config, spy, tokenizer), 5
    runs = {}
    for record in (False, True):
        spy.calls.clear()
        runs[record] = pipe.generate(B, steps, seed=0, record=record)
        assert runs[record].nfe == steps == len(spy.calls)
        lift = (lambda probs: probs) if record else spy.vocab_embed
        assert not spy.calls[0][2].any()
        for (*_, logits), (_, _, estimate, _) in zip(spy.calls, spy.calls[1:]):
            torch.testing.assert_close(estimate, lift(torch.softmax(logits, -1)), rtol=0, atol=1e-6)
    check_trajectory(runs[True].trajectory, "flm", steps, pipe.vocab_size, runs[True].tokens)
    d = reference_euler(pipe, steps, seed=0)
    assert torch.equal(runs[False].tokens, d.argmax(-1)) and torch.equal(runs[True].tokens, d.argmax(-1))
    positions, ids = held_positions(pipe, "ab", "c")
    held = pipe.generate(B, steps, seed=0, prefix="ab", suffix="c")
    assert (held.tokens[:, positions] == torch.tensor(ids)).all()


# ------------------------------------------------------------------ stochastic flow sampling (renoise)


def reference_renoised(pipe, steps: int, seed: int, eta: float) -> torch.Tensor:
    """The last D of an independent loop of x' = g' D + (1 - g')(sqrt(1 - eta^2) eps_hat + eta eps_new),
    eps_hat = (x - g D) / (1 - g), drawing eps_new ~ N(0, I_K) from the run's generator after each call."""
    k = pipe.vocab_size
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(B, L, k, generator=generator)
    t = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    g = gamma_from_alpha(t, k).float()
    with torch.no_grad():
        for i in range(steps):
            d = torch.softmax(pipe.network(z, torch.full((B,), float(t[i]))), -1)
            if i < steps - 1:
                eps_hat = (z - g[i] * d) / (1 - g[i])
                fresh = torch.randn(B, L, k, generator=generator)
                z = g[i + 1] * d + (1 - g[i + 1]) * ((1 - eta ** 2) ** 0.5 * eps_hat + eta * fresh)
    return d


def test_renoised_flow_sampling_equals_an_independent_loop(pipes):
    pipe, steps = pipes["flm"], 5
    d = reference_renoised(pipe, steps, seed=4, eta=0.5)
    gen = pipe.generate(B, steps, seed=4, record=True, renoise=0.5)  # a recorded run keeps the dense x
    assert torch.equal(gen.tokens, d.argmax(-1)) and gen.renoise == 0.5
    torch.testing.assert_close(gen.trajectory.top_probs[-1], d.topk(gen.trajectory.top_probs.shape[-1], -1).values,
                               rtol=0, atol=1e-5)


def test_renoise_zero_is_the_deterministic_sampler_and_more_noise_changes_the_samples(pipes):
    pipe = pipes["flm"]
    plain = pipe.generate(B, 6, seed=3).tokens
    assert torch.equal(pipe.generate(B, 6, seed=3, renoise=0.0).tokens, plain)
    assert not torch.equal(pipe.generate(B, 6, seed=3, renoise=1.0).tokens, plain)  # low-rank noise drawn in D dims
    assert torch.equal(pipe.generate(B, 1, seed=3, renoise=1.0).tokens, pipe.generate(B, 1, seed=3).tokens)  # no step to renoise


@pytest.mark.parametrize("kind", ["mdlm", "ar"])
def test_renoise_is_refused_where_there_is_no_gaussian_noise(pipes, kind):
    with pytest.raises(ValueError, match="renoise applies to flows"):
        pipes[kind].generate(B, 2, seed=0, renoise=0.5)
    with pytest.raises(ValueError, match=r"renoise must be in \[0, 1\]"):
        pipes["flm"].generate(B, 2, seed=0, renoise=1.5)
