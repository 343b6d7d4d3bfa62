"""cxr-fairbench: how well, and how fairly, CLIP-like foundation models classify chest X-rays."""

__version__ = "0.2.0"
