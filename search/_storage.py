"""Where studies live: Optuna's own storages, opened from a URL or a path.

- No ``--storage`` (and none in the study file): Optuna's journal file storage in
  ``./plummer-storage/studies.journal``. It needs no set-up, persists, resumes, and is safe
  for several processes on one machine (the journal file backend locks its file).
- ``sqlite:///...``, ``postgresql://...`` (``postgresql+psycopg2://``), ``mysql://...``:
  Optuna's RDB storage (PostgreSQL for workers on several machines).
- Any other text: the path of a journal file.

A study carries its study file's fingerprint (model, hardware, space, memory, co-design,
objectives, constraints) and one digest per part as user attributes: a study file whose
fingerprint differs from the stored study's of the same name gets an error naming the parts
that differ, and its trials are never mixed in.
"""

from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from plummer.errors import SpecError
from search._study_file import StudyFile

DEFAULT_STORAGE = Path("plummer-storage") / "studies.journal"
_RDB_PREFIXES = ("sqlite:", "postgresql", "postgres:", "mysql")
FINGERPRINT = "plummer_fingerprint"
FINGERPRINT_PARTS = "plummer_fingerprint_parts"
WORKER = "plummer_worker"


def storage_url(study: StudyFile | None, override: str | None) -> str:
    """The storage a command uses: ``override``, else the study file's, else the default
    journal file (as an absolute path)."""
    url = override or (study.storage if study else None)
    return url or str(Path.cwd() / DEFAULT_STORAGE)


def open_storage(url: str) -> BaseStorage:
    """Optuna's storage for ``url`` (module docstring); errors name the URL."""
    if url.startswith(_RDB_PREFIXES):
        try:
            return RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except ImportError as exc:
            raise SpecError(f"--storage '{url}' needs a database driver: {exc}") from None
        except (SQLAlchemyError, ValueError) as exc:  # a bad URL or an unreachable server
            raise SpecError(f"--storage '{url}' cannot be opened: {str(exc).splitlines()[0]}") from None
    path = Path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise SpecError(f"--storage '{url}' is not a writable journal file: {exc.strerror}") from None


def open_existing_storage(url: str) -> BaseStorage:
    """:func:`open_storage` for a storage that must already hold studies (reading commands:
    ``list``, ``show``, ``best``): where nothing is stored yet (no journal file, no SQLite
    file, a database without Optuna's tables) the error names the storage, and nothing is
    created."""
    missing = SpecError(f"storage '{url}': no study storage is there (nothing to read); "
                        "`plummer study run` creates one")
    if url.startswith(_RDB_PREFIXES):
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError) as exc:
            raise SpecError(f"--storage '{url}' cannot be opened: {str(exc).splitlines()[0]}") from None
        if parsed.get_backend_name() == "sqlite":
            if not parsed.database or parsed.database == ":memory:" or not Path(parsed.database).is_file():
                raise missing
        else:
            try:
                engine = create_engine(url)
                try:
                    if not inspect(engine).has_table("studies"):
                        raise missing
                finally:
                    engine.dispose()
            except ImportError as exc:
                raise SpecError(f"--storage '{url}' needs a database driver: {exc}") from None
            except SQLAlchemyError as exc:
                raise SpecError(f"--storage '{url}' cannot be opened: {str(exc).splitlines()[0]}") from None
    elif not Path(url).is_file():
        raise missing
    return open_storage(url)


def open_study(study: StudyFile, storage: BaseStorage, sampler: optuna.samplers.BaseSampler | None = None,
               create: bool = True) -> optuna.Study:
    """The stored study of ``study``'s name (created if absent and ``create``), checked to be
    the same search (fingerprint); the error names what differs."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" on stderr
    directions = [o.direction for o in study.objectives]
    names = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    if study.name not in names:
        if not create:
            raise SpecError(f"study '{study.name}' is not in the storage; run `plummer study run` first")
        result = optuna.create_study(storage=storage, study_name=study.name, directions=directions,
                                     sampler=sampler, load_if_exists=True)
        if result.user_attrs.get(FINGERPRINT) is None:
            result.set_user_attr(FINGERPRINT, study.fingerprint())
            result.set_user_attr(FINGERPRINT_PARTS, study.fingerprint_parts())
            result.set_user_attr("plummer_model", study.model.name)
            result.set_user_attr("plummer_hardware", study.hardware.name)
            result.set_user_attr("plummer_space", study.space.to_dict())
    else:
        result = optuna.load_study(study_name=study.name, storage=storage, sampler=sampler)
    stored = result.user_attrs.get(FINGERPRINT)
    if stored != study.fingerprint():
        parts = result.user_attrs.get(FINGERPRINT_PARTS)
        if isinstance(parts, dict):
            mine = study.fingerprint_parts()
            differ = sorted(k for k in set(parts) | set(mine) if parts.get(k) != mine.get(k))
            what = f"its {', '.join(differ)} differ" if differ else "its search differs"
        else:  # stored before the parts were
            what = (f"model '{result.user_attrs.get('plummer_model')}', hardware "
                    f"'{result.user_attrs.get('plummer_hardware')}'; space, objectives or constraints differ")
        raise SpecError(
            f"the storage already holds a study named '{study.name}' for a different search "
            f"({what}); its trials are not this file's: give the study file another 'name' "
            "(a new study) or use another --storage")
    return result


def worker_tag() -> str:
    """``host:pid`` of this process (written on every trial it asks)."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: Seconds after which a RUNNING trial that carries no worker tag is taken for dead: a worker
#: tags each trial right after Optuna's ``ask`` (milliseconds later), so only a worker killed
#: between the two leaves one. A guess with a wide margin.
UNTAGGED_GRACE_S = 10.0


def fail_dead_workers_trials(study: optuna.Study) -> int:
    """Mark FAIL the RUNNING trials asked by processes of this host that no longer exist
    (a worker killed mid-batch), and those no worker tagged within ``UNTAGGED_GRACE_S`` of
    their start (a worker killed between ``ask`` and its tag); returns how many. Finished
    trials are never touched, and trials of live workers and of other hosts are left alone."""
    host = socket.gethostname()
    now = datetime.datetime.now()
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag = trial.user_attrs.get(WORKER, "")
        owner, _, pid = tag.rpartition(":")
        dead = owner == host and pid.isdigit() and not _alive(int(pid))
        orphan = not tag and trial.datetime_start is not None and (
            (now - trial.datetime_start).total_seconds() > UNTAGGED_GRACE_S)
        if dead or orphan:
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            failed += 1
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
