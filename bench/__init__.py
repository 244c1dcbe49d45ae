"""Benchmarks of fo-assets (not run by CI).

``python -m bench`` compares fo-assets with a dlt pipeline doing the same work (see bench/README.md);
``python -m bench.extract`` and ``python -m bench.load`` measure the extraction engine and the sinks alone.
"""
