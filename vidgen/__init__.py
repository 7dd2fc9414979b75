"""vidgen: a JAX research codebase for text-to-video generation (patch VAE + diffusion transformer)."""

__version__ = '0.1.0'
