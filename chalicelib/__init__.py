"""The registration backend's domain, data access and tools; ``app.py`` only translates."""
