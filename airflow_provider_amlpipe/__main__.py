"""``python -m airflow_provider_amlpipe``: the ``amlpipe`` command."""

import sys

from airflow_provider_amlpipe.cli import main

sys.exit(main())
