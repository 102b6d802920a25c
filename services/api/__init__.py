"""The read-only HTTP API over the stored predictions (``create_app`` in ``main``)."""
