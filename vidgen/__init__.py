"""vidgen: a compact, readable attention-based video diffusion library.

Video tensors are (B, C, F, H, W) in [-1, 1] at every public boundary.
"""

__version__ = "0.1.0"
