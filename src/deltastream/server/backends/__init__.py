"""What answers a request: scripted replies, a local model, recordings, an upstream."""
