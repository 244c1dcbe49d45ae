"""What tests, the soak and the benchmarks share: the test tenant's configuration (``tenant``), the ground
truth landed rows are compared with (``truth``) and Business Events payloads and servers (``events``).
Fixtures stay in the conftest.py files."""
