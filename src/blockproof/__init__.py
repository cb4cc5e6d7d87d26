"""blockproof: evidence of internet censorship of social-media platforms."""

__version__ = "0.1.0"
