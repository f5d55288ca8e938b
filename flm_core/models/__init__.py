"""Networks: torch-only modules that know nothing about objectives."""
from flm_core.config import ConfigError, ModelConfig
from flm_core.memory import available_bytes, gib, weights_bytes
from flm_core.models.ar import ARTransformer
from flm_core.models.dit import DiT


def build_network(config: ModelConfig):
    """The network for a model config: causal -> ARTransformer, else DiT. A config is validated and its
    weights checked against the free memory before anything is allocated."""
    config.validate()
    needed, free = weights_bytes(config), available_bytes()
    if needed > free:
        raise ConfigError(f"a model of {config.num_parameters_estimate():,} parameters needs {gib(needed)} for its "
                          f"weights alone, more than the {gib(free)} free here: choose a smaller "
                          f"vocab_size, hidden_size or n_blocks")
    return ARTransformer(config) if config.causal else DiT(config)
