"""Measuring: output parity and latency of exported graphs against the original."""
