"""Studies on a real PostgreSQL server (Debian's package, started by the test): several
worker processes give exactly the requested trials, none duplicated or lost."""

from __future__ import annotations

import optuna
import pytest
from _postgres import PostgresServer
from test_study import _study

import search
from plummer.errors import SpecError


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()
    yield server.url
    server.stop()


def test_workers_on_postgres_give_exactly_the_requested_trials(tmp_path, postgres):
    path = _study(tmp_path, trials=30)
    study = search.load_study_file(path)
    summary = search.run_study(study, postgres, jobs=3, progress=False)
    stored = optuna.load_study(study_name="small", storage=search.open_storage(postgres))
    complete = stored.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert summary["trials_run"] == 30 == len(complete)
    assert len({t.number for t in complete}) == 30
    assert not stored.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    # a second run continues the same study
    search.run_study(study, postgres, trials=6, progress=False)
    assert len(stored.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 36


def test_postgres_storage_refuses_a_different_search(tmp_path, postgres):
    search.run_study(search.load_study_file(_study(tmp_path, name="pg2", trials=4)), postgres, progress=False)
    other = search.load_study_file(_study(tmp_path, name="pg2", trials=4, metric="ttft_s", direction="minimize"))
    with pytest.raises(SpecError, match="different search"):
        search.run_study(other, postgres, progress=False)
