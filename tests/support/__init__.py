"""Helpers shared by the test tiers: local servers speaking cloud REST protocols, stores, DAG runners,
the session's environment. Imported as ``support.<module>`` (``tests/`` is on ``sys.path``)."""
