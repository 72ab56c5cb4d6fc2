"""Early-termination policies on synthetic metric curves, against AML's documented examples."""

from __future__ import annotations

import pytest

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.sweep import (
    BanditPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
)
from airflow_provider_amlpipe.sweep.policies import MAXIMIZE, MINIMIZE, check_policy


def test_bandit_slack_factor_as_in_amls_example() -> None:
    # AML: slack_factor=0.1, delay_evaluation=5; the best run reports 0.8 at interval 5 (maximize), so
    # any run below 0.8 / (1 + 0.1) = 0.727 is terminated.
    policy = BanditPolicy(evaluation_interval=1, slack_factor=0.1, delay_evaluation=5)
    curves = {
        0: [0.5, 0.6, 0.7, 0.75, 0.8],
        1: [0.5, 0.6, 0.65, 0.7, 0.72],
        2: [0.5, 0.6, 0.65, 0.7, 0.73],
    }
    assert policy.decide(1, 5, curves, MAXIMIZE) is not None
    assert policy.decide(2, 5, curves, MAXIMIZE) is None
    assert policy.decide(0, 5, curves, MAXIMIZE) is None
    # Before delay_evaluation nothing is terminated, however far behind.
    assert policy.decide(1, 4, {0: [0.9] * 4, 1: [0.1] * 4}, MAXIMIZE) is None


def test_bandit_compares_the_runs_best_and_only_up_to_the_interval() -> None:
    # AML: slack_factor 0.2, run X's best is 0.8; a run whose best Y has Y * 1.2 < 0.8 is cancelled.
    policy = BanditPolicy(evaluation_interval=2, slack_factor=0.2)
    assert policy.decide(1, 2, {0: [0.7, 0.8], 1: [0.66, 0.6]}, MAXIMIZE) is not None
    assert policy.decide(1, 2, {0: [0.7, 0.8], 1: [0.67, 0.6]}, MAXIMIZE) is None  # its best 0.67 counts
    # Applied at multiples of evaluation_interval only.
    assert policy.decide(1, 3, {0: [0.7, 0.8, 0.9], 1: [0.1, 0.1, 0.1]}, MAXIMIZE) is None
    # An older run's value at interval 6 does not count against a run evaluated at interval 2.
    assert policy.decide(1, 2, {0: [0.5, 0.5, 0.5, 0.5, 0.5, 5.0], 1: [0.45, 0.45]}, MAXIMIZE) is None


def test_bandit_slack_amount_and_minimize() -> None:
    amount = BanditPolicy(slack_amount=0.05)
    assert amount.decide(1, 1, {0: [0.8], 1: [0.74]}, MAXIMIZE) is not None
    assert amount.decide(1, 1, {0: [0.8], 1: [0.76]}, MAXIMIZE) is None
    assert amount.decide(1, 1, {0: [0.2], 1: [0.26]}, MINIMIZE) is not None
    assert amount.decide(1, 1, {0: [0.2], 1: [0.24]}, MINIMIZE) is None
    factor = BanditPolicy(slack_factor=0.1)
    assert factor.decide(1, 1, {0: [0.2], 1: [0.23]}, MINIMIZE) is not None  # above 0.2 * 1.1
    assert factor.decide(1, 1, {0: [0.2], 1: [0.21]}, MINIMIZE) is None


def test_median_stopping_as_documented() -> None:
    # Cancelled at interval N if its best up to N is worse than the median of the running averages 1:N.
    policy = MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=3)
    curves = {0: [1.0, 2.0, 3.0], 1: [2.0, 3.0, 4.0], 2: [0.5, 1.0, 1.5]}  # averages 2, 3, 1 -> median 2
    assert policy.decide(2, 3, curves, MAXIMIZE) is not None
    assert policy.decide(0, 3, curves, MAXIMIZE) is None
    assert policy.decide(2, 2, {k: v[:2] for k, v in curves.items()}, MAXIMIZE) is None  # delayed
    # Minimizing, a loss above the median of the averages is cancelled.
    losses = {0: [3.0, 2.0, 1.0], 1: [4.0, 3.0, 2.0], 2: [5.0, 4.5, 4.0]}  # averages 2, 3, 4.5 -> median 3
    assert policy.decide(2, 3, losses, MINIMIZE) is not None
    assert policy.decide(1, 3, losses, MINIMIZE) is None  # best 2.0 beats the median
    # Runs that have not reached interval N have no running average over 1:N.
    assert policy.decide(0, 3, {0: [0.1, 0.1, 0.1], 1: [9.0]}, MAXIMIZE) is None


def test_truncation_selection_cuts_the_lowest_percentage_at_the_interval() -> None:
    policy = TruncationSelectionPolicy(truncation_percentage=20, evaluation_interval=1, delay_evaluation=5)
    curves = {n: [0.1 * n] * 5 for n in range(5)}  # 5 runs: the lowest 20 % is one run, #0
    assert policy.decide(0, 5, curves, MAXIMIZE) is not None
    assert all(policy.decide(n, 5, curves, MAXIMIZE) is None for n in range(1, 5))
    assert policy.decide(0, 4, {n: c[:4] for n, c in curves.items()}, MAXIMIZE) is None  # delayed
    # Minimizing, the highest losses are the lowest performers.
    assert policy.decide(4, 5, curves, MINIMIZE) is not None
    # A young run is compared with the others' values at its own interval, not their later ones.
    young = TruncationSelectionPolicy(truncation_percentage=50)
    old = {0: [0.1, 0.2, 0.9], 1: [0.1, 0.3, 0.95], 2: [0.3, 0.25]}
    assert young.decide(2, 2, old, MAXIMIZE) is None  # 0.25 at interval 2 beats #0's 0.2
    assert young.decide(0, 2, old, MAXIMIZE) is not None


def test_truncation_ties_and_finished_runs() -> None:
    policy = TruncationSelectionPolicy(truncation_percentage=25)
    tied = {n: [0.5] for n in range(4)}
    assert all(policy.decide(n, 1, tied, MAXIMIZE) is None for n in range(4))  # ties favour the run
    curves = {0: [0.1], 1: [0.2], 2: [0.3], 3: [0.4]}
    assert policy.decide(1, 1, curves, MAXIMIZE) is None
    excluding = TruncationSelectionPolicy(truncation_percentage=34, exclude_finished_jobs=True)
    # Without finished #0 the peers are 1, 2, 3: 34 % of 3 is one run, #1.
    assert excluding.decide(1, 1, curves, MAXIMIZE, finished=[0]) is not None
    assert excluding.decide(1, 1, curves, MAXIMIZE, finished=[]) is None  # #0 is lower and counts


def test_no_termination_and_none() -> None:
    assert NoTerminationPolicy().decide(1, 9, {0: [1.0] * 9, 1: [0.0] * 9}, MAXIMIZE) is None
    assert isinstance(check_policy(None), NoTerminationPolicy)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: BanditPolicy(slack_factor=0.1, slack_amount=0.2), "BanditPolicy"),
        (lambda: BanditPolicy(), "BanditPolicy"),
        (lambda: BanditPolicy(slack_factor=-1), "BanditPolicy.slack_factor"),
        (lambda: BanditPolicy(slack_factor=0.1, evaluation_interval=0), "BanditPolicy.evaluation_interval"),
        (lambda: MedianStoppingPolicy(delay_evaluation=-1), "MedianStoppingPolicy.delay_evaluation"),
        (
            lambda: TruncationSelectionPolicy(truncation_percentage=100),
            "TruncationSelectionPolicy.truncation_percentage",
        ),
        (lambda: check_policy("bandit"), "policy"),
    ],
)
def test_bad_policies_name_the_field(make: object, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make()  # type: ignore[operator]
    assert info.value.field == field
    assert info.value.fix
