"""Where figures are measured: processor name and hardware line."""
import torch

from flm_core.environment import hardware, processor_name


def test_the_cpu_line_names_the_processor_and_torch_threads():
    assert processor_name()
    assert hardware("cpu") == f"CPU {processor_name()}, {torch.get_num_threads()} threads"
