"""The HTTP API (FastAPI): ingest, status and trace, dead letters, health."""
