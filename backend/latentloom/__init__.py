"""Latentloom: a node editor and engine for diffusion image generation."""

__version__ = "0.1.0"
