"""Demo data: a small fictional authority for trying Caseclock out (``directory.yaml``)."""
