"""Register the sweep's best model as a versioned dataset (AML: ``best_run.register_model``)."""

import json
import shutil

from airflow_provider_amlpipe import runtime

source = runtime.input_path("model")
target = runtime.output_path("registered")
shutil.copy(source / "model.pkl", target / "model.pkl")
best = runtime.param("best_hyperparameters")
(target / "hyperparameters.json").write_text(json.dumps(best, indent=1, sort_keys=True) + "\n", encoding="utf-8")
print(f"registered the best model, trained with {best}")
