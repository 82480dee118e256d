"""hotoku: an open-source city OS for zero-carbon digital towns."""

__version__ = "0.1.0"
