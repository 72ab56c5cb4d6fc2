"""ParallelRunStep without Airflow: mini-batching, the ``init()`` / ``run(mini_batch)`` worker protocol,
a pool of worker processes with retries, timeouts and an error threshold, ``append_row`` output, and
per-item records that let a rerun process only new items."""
