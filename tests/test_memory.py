"""Memory checks happen before allocation and fail in one line that says what to change."""
import pytest
import torch

from flm_core import memory
from flm_core.config import ConfigError, ModelConfig
from flm_core.models import build_network
from flm_core.pipeline import Pipeline


def test_available_memory_is_positive_and_below_physical_memory():
    import os

    free = memory.available_bytes()
    assert 0 < free <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_a_config_too_large_for_this_machine_is_refused_before_allocation(monkeypatch):
    devices = []  # where each Linear's weight was made: the count builds on "meta", which allocates nothing
    linear_init = torch.nn.Linear.__init__

    def spy(self, *args, **kwargs):
        linear_init(self, *args, **kwargs)
        devices.append(self.weight.device.type)

    monkeypatch.setattr(torch.nn.Linear, "__init__", spy)
    config = ModelConfig(vocab_size=1_000_000, seq_len=128, hidden_size=16_384, n_blocks=8, n_heads=128)
    with pytest.raises(ConfigError, match=r"needs \d+\.\d GiB for its weights alone.*choose a smaller"):
        build_network(config)
    assert devices and set(devices) == {"meta"}


def test_generation_estimate_grows_with_samples_and_records(make_config, tokenizer):
    config = make_config("flm", tokenizer.get_vocab_size()).model
    one, four = memory.generation_bytes(config, 1, 0), memory.generation_bytes(config, 4, 0)
    assert four == 4 * one
    assert memory.generation_bytes(config, 1, 256) > one
    # the estimate covers what a real run keeps: its (B, L, K) logits alone
    assert one >= 4 * config.seq_len * config.vocab_size


def test_generate_refuses_a_run_that_does_not_fit(make_config, tokenizer, monkeypatch):
    import flm_core.pipeline as pipeline

    config = make_config("flm", tokenizer.get_vocab_size())
    pipe = Pipeline(config, build_network(config.model), tokenizer)
    need = memory.generation_bytes(config.model, 8, 0)
    monkeypatch.setattr(pipeline, "available_bytes", lambda device: need - 1)
    with pytest.raises(ValueError, match=r"8 samples of .* need about .* free: use fewer samples"):
        pipe.generate(8, 2)
    assert pipe.generate(4, 2).tokens.shape[0] == 4  # half the samples fit
