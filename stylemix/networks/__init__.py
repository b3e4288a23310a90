"""StyleGAN2 generator written for stylemix, with NVIDIA's parameter names."""

from .config import GeneratorConfig
from .generator import Generator, MappingNetwork, SynthesisNetwork

__all__ = ["Generator", "GeneratorConfig", "MappingNetwork", "SynthesisNetwork"]
