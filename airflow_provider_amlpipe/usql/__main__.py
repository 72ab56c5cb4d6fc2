"""``python -m airflow_provider_amlpipe.usql``."""

import sys

from airflow_provider_amlpipe.usql.cli import main

sys.exit(main())
