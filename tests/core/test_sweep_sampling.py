"""Parameter expressions (AML's meaning) and sampling methods on Optuna's samplers."""

from __future__ import annotations

import math
import statistics

import optuna
import pytest

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.sweep import (
    BayesianParameterSampling,
    GridParameterSampling,
    RandomParameterSampling,
    choice,
    lognormal,
    loguniform,
    normal,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
)
from airflow_provider_amlpipe.sweep.expressions import argument_text, parse_expression

optuna.logging.set_verbosity(optuna.logging.WARNING)


def draw(sampling: RandomParameterSampling, n: int, seed: int = 7) -> list[dict[str, object]]:
    study = optuna.create_study(sampler=sampling.sampler(seed, 1))
    values = []
    for _ in range(n):
        trial = study.ask(sampling.distributions())
        values.append(sampling.values(trial.params))
        study.tell(trial, 0.0)
    return values


def test_every_expression_samples_what_aml_documents() -> None:
    space = {
        "c": choice(25, 50, 100),
        "r": randint(4),
        "u": uniform(-1, 1),
        "qu": quniform(0, 10, 2),
        "lu": loguniform(-6, -1),
        "qlu": qloguniform(0, 4, 5),
        "n": normal(10, 2),
        "qn": qnormal(10, 2, 1),
        "ln": lognormal(0, 0.5),
        "qln": qlognormal(1, 0.5, 0.5),
    }
    values = draw(RandomParameterSampling(space), 400)
    column = {name: [v[name] for v in values] for name in space}
    assert set(column["c"]) == {25, 50, 100}
    assert set(column["r"]) == {0, 1, 2, 3}
    assert all(-1 <= x <= 1 for x in column["u"])
    assert set(column["qu"]) <= {0, 2, 4, 6, 8, 10} and len(set(column["qu"])) >= 5
    assert all(math.exp(-6) <= x <= math.exp(-1) for x in column["lu"])
    # exp(uniform): the logarithms are uniform, so about half lie below the midpoint -3.5.
    assert 0.4 < sum(math.log(x) < -3.5 for x in column["lu"]) / 400 < 0.6
    assert all(x % 5 == 0 for x in column["qlu"])
    assert 9.5 < statistics.fmean(column["n"]) < 10.5 and 1.7 < statistics.stdev(column["n"]) < 2.3
    assert min(column["n"]) < 6 and max(column["n"]) > 14  # unbounded tails, not a clipped range
    assert all(float(x).is_integer() for x in column["qn"])
    assert all(x > 0 for x in column["ln"])
    assert -0.1 < statistics.fmean(math.log(x) for x in column["ln"]) < 0.1
    assert all(abs(x / 0.5 - round(x / 0.5)) < 1e-9 for x in column["qln"])


def test_seeded_sampling_repeats() -> None:
    sampling = RandomParameterSampling({"--lr": loguniform(-6, -1), "--bs": choice(25, 50)})
    assert draw(sampling, 5, seed=3) == draw(sampling, 5, seed=3)
    assert draw(sampling, 5, seed=3) != draw(sampling, 5, seed=4)


def test_grid_visits_every_point_once() -> None:
    sampling = GridParameterSampling({"a": choice(1, 2, 3), "b": choice("x", "y")})
    assert sampling.max_runs() == 6
    points = draw(sampling, 6)  # type: ignore[arg-type]
    assert sorted((p["a"], p["b"]) for p in points) == [(a, b) for a in (1, 2, 3) for b in "xy"]


def test_bayesian_learns_from_finished_trials() -> None:
    sampling = BayesianParameterSampling({"x": uniform(0, 10)}, seed=1)
    study = optuna.create_study(sampler=sampling.sampler(0, 1), direction="minimize")
    xs = []
    for _ in range(40):
        trial = study.ask(sampling.distributions())
        x = sampling.values(trial.params)["x"]
        xs.append(x)
        study.tell(trial, (x - 7.0) ** 2)
    assert abs(study.best_params["x"] - 7.0) < 0.5
    assert statistics.fmean(abs(x - 7.0) for x in xs[-10:]) < statistics.fmean(abs(x - 7.0) for x in xs[:10])


def test_arguments_text() -> None:
    assert argument_text(50.0) == "50"
    assert argument_text(0.001234) == "0.001234"
    assert argument_text("relu") == "relu"


@pytest.mark.parametrize(
    ("make", "field", "words"),
    [
        (lambda: GridParameterSampling({"lr": uniform(0, 1)}), "GridParameterSampling.parameter_space['lr']", "choice"),
        (
            lambda: BayesianParameterSampling({"lr": loguniform(-6, -1)}),
            "BayesianParameterSampling.parameter_space['lr']",
            "choice, uniform, quniform",
        ),
        (lambda: RandomParameterSampling({"lr": ("beta", 1, 2)}), "RandomParameterSampling.parameter_space['lr']", ""),
        (lambda: parse_expression("x", ["gamma", [1, 2]]), "x", "unknown parameter expression 'gamma'"),
        (lambda: RandomParameterSampling({}), "RandomParameterSampling.parameter_space", ""),
        (lambda: uniform(2, 1), "uniform(low, high)", "not below"),
        (lambda: choice(), "choice()", "no options"),
        (lambda: quniform(0, 1, 0), "quniform(q)", "positive"),
        (lambda: normal(0, 0), "normal(sigma)", "positive"),
        (lambda: randint(0), "randint(upper)", "positive"),
    ],
)
def test_bad_spaces_name_the_field(make: object, field: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make()  # type: ignore[operator]
    assert info.value.field == field
    assert words in str(info.value)


def test_amls_json_form_is_accepted() -> None:
    assert parse_expression("x", ["choice", [[25, 50]]]) == choice(25, 50)
    assert parse_expression("x", ["loguniform", [-6, -1]]) == loguniform(-6, -1)
