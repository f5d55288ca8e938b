"""Networks: torch-only modules that know nothing about objectives."""
from flm_core.config import ModelConfig
from flm_core.models.ar import ARTransformer
from flm_core.models.dit import DiT


def build_network(config: ModelConfig):
    """The network for a model config: causal -> ARTransformer, else DiT."""
    return ARTransformer(config) if config.causal else DiT(config)
