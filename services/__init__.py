"""Read path: the PredictiveAnalytics service and the read-only HTTP API."""
