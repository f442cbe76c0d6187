"""asv benchmarks of nnjit: kernels, whole epochs, memory, start-up and training results.

Every workload comes from :mod:`nnjit.workloads`; with ``NNJIT_BENCH_QUICK=1``
they are shrunk about fifty-fold so that the whole suite runs in a few minutes.
Compilation and first calls happen in ``setup``, never in a timed body.
"""
