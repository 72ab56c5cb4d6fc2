"""Step lifecycle in plain Python: inputs, fingerprint, reuse decision, run, commit."""
