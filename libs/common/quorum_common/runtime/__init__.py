"""Service runtime: configuration, logging, HTTP endpoints, metrics, tracing and the event clock."""
