"""Simulated hardware at the outermost seams of third-party libraries, for tests and hardware-free demos."""
