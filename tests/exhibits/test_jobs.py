"""Ingest jobs: states only move forward, progress only grows, failures keep their code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from exhibits.jobs import Job, Jobs, JobState
from exhibits.model import IngestResult
from exhibits.modelstore import ModelAsset
from server.errors import ForumcastError, ModelError


def result() -> IngestResult:
    return IngestResult("obj", 12, "m", False, "y", False, 1.0, ((0, 0, 0), (1, 1, 1)), [])


def asset(job: Job, res: IngestResult) -> ModelAsset:
    return ModelAsset.from_result(job.exhibit, res, created="2020-12-06T00:00:00+00:00", source="upload:x")


async def test_a_job_runs_to_done_with_monotonic_progress() -> None:
    jobs = Jobs()
    job = jobs.create("cn-a-01", "a.obj", 10)
    seen: list[tuple[str, float, str]] = []

    async def runner(job: Job, progress: Callable[[float, str], None]) -> IngestResult:
        for fraction, step in ((0.1, "load"), (0.5, "lod 0"), (0.3, "late report"), (0.9, "write")):
            progress(fraction, step)
            seen.append((job.state.value, job.progress, job.step))
            await asyncio.sleep(0)
        return result()

    async def commit(job: Job, res: IngestResult) -> ModelAsset:
        assert job.state is JobState.RUNNING and job.step == "storing"
        return asset(job, res)

    assert job.state is JobState.QUEUED and jobs.active() == 1 and jobs.active("cn-a-01") == 1
    await jobs.run(job, runner, commit)
    assert seen == [
        ("running", 0.1, "load"),
        ("running", 0.5, "lod 0"),
        ("running", 0.5, "late report"),
        ("running", 0.9, "write"),
    ]
    assert job.state is JobState.DONE and job.progress == 1.0 and job.asset is not None and job.finished
    assert jobs.active() == 0 and jobs.get(job.id) is job
    body = job.to_json(lambda a: {"exhibit": a.exhibit})
    assert body["state"] == "done" and body["model"] == {"exhibit": "cn-a-01"} and "error" not in body


async def test_a_refusal_is_kept_with_its_code_and_nothing_is_committed() -> None:
    jobs = Jobs()
    job = jobs.create("cn-a-01", "a.stl", 10)
    committed = []

    async def runner(job: Job, progress: Callable[[float, str], None]) -> IngestResult:
        progress(0.05, "load")
        raise ModelError("model.no_faces", "a.stl has no faces: a point cloud or wireframe")

    async def commit(job: Job, res: IngestResult) -> ModelAsset:
        committed.append(job)
        return asset(job, res)

    await jobs.run(job, runner, commit)
    assert job.state is JobState.FAILED and committed == []
    assert job.to_json(lambda a: {})["error"] == {
        "code": "model.no_faces",
        "message": "a.stl has no faces: a point cloud or wireframe",
    }


async def test_an_unexpected_error_becomes_internal() -> None:
    jobs = Jobs()
    job = jobs.create("cn-a-01", "a.stl", 10)

    async def runner(job: Job, progress: Callable[[float, str], None]) -> IngestResult:
        raise ZeroDivisionError

    async def commit(job: Job, res: IngestResult) -> ModelAsset:
        raise AssertionError("not reached")

    await jobs.run(job, runner, commit)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "internal.error"


def test_states_never_go_back() -> None:
    job = Job(id="j", exhibit="e", filename="f", size=1)
    job.move(JobState.RUNNING)
    job.move(JobState.DONE)
    with pytest.raises(RuntimeError, match="done cannot become running"):
        job.move(JobState.RUNNING)


def test_unknown_job_and_bounded_memory() -> None:
    jobs = Jobs(keep=3)
    with pytest.raises(ForumcastError) as caught:
        jobs.get("nope")
    assert caught.value.code == "job.unknown"
    made = [jobs.create("e", "f", 1) for _ in range(3)]
    for job in made[:2]:
        job.move(JobState.FAILED)
    jobs.create("e", "f", 1)
    # The oldest finished job is forgotten first; unfinished ones stay.
    with pytest.raises(ForumcastError):
        jobs.get(made[0].id)
    assert jobs.get(made[1].id) and jobs.get(made[2].id)


def test_model_errors_survive_pickling() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(ModelError("model.corrupt", "x.glb is truncated")))
    assert (
        isinstance(error, ModelError)
        and error.code == "model.corrupt"
        and error.message == "x.glb is truncated"
    )
