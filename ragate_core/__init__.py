"""ragate's neutral layer: what the harness (``gates``) and the demo chain (``rag``) share.

Errors, JSONL I/O, the project's ``[tool.ragate]`` configuration, the embedding model
loader and the detectors used both by guardrails and by metrics. It imports neither
``rag`` nor ``gates``.
"""
