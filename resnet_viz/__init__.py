"""ResNet Lab engine: plain vs residual nets, probes and analyses (no UI code)."""
__version__ = "0.1.0"
