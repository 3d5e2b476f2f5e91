"""Test doubles shared by the test suite, the benchmarks and demos (never used by the product code).

``mock_server``: a local OpenAI-compatible chat server with fault injection (``MockChatServer``).
"""
