"""Throughput benchmarks (samples/s, peak memory, MFU) and the GPU-hour estimate of --dry-run."""
