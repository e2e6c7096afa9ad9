"""Camunda's own Python worker (camunda-external-task-client-python3, from PyPI) against a real `carepath serve`:
the diagram's external task is fetched over HTTP with basic credentials, done by the worker's handler, and the
episode goes on. Nothing of CarePath's is imported by the worker's side."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
from camunda.external_task.external_task import ExternalTask, TaskResult
from camunda.external_task.external_task_worker import ExternalTaskWorker

from carepath.engine.application import CarePath
from carepath.engine.usecases.users import add_user

from .support.readme import newcomer_environment, running_server
from .test_external_tasks import sms_pathway


def test_camunda_s_python_worker_completes_the_external_task_of_a_running_episode(
        engine: CarePath, database_url: str, tmp_path: Path) -> None:
    lead_token = add_user(engine, "lead", "clinical_lead", [])
    worker_token = add_user(engine, "sms-gateway", "integration", [])
    env = {**newcomer_environment(database_url), "CAREPATH_DEPLOY_SHIPPED_PATHWAYS": "false",
           "CAREPATH_SCHEDULER_ENABLED": "false"}
    serve = [str(Path(sys.prefix) / "bin" / "carepath"), "serve"]
    with running_server(serve, tmp_path, env) as base:
        lead = {"Authorization": f"Bearer {lead_token}"}
        deployed = httpx.post(f"{base}/api/pathways", headers=lead,
                              files=[("files", ("sms.bpmn", sms_pathway().encode(), "application/xml"))])
        assert deployed.status_code == 201, deployed.text
        started = httpx.post(f"{base}/api/pathways/sms-reminder/instances", headers=lead,
                             json={"business_key": "visit-9", "data": {"phone": "+15550100", "message": "Hi"}})
        assert started.status_code == 201, started.text
        instance_id = started.json()["id"]
        seen: dict[str, Any] = {}

        def send_sms(task: ExternalTask) -> TaskResult:
            seen.update(phone=task.get_variable("phone"), key=task.get_business_key())
            return task.complete({"sms_sent": True, "provider_id": 4711})

        worker = ExternalTaskWorker(worker_id="py-worker", base_url=f"{base}/engine-rest", config={
            "auth_basic": {"username": "sms-gateway", "password": worker_token},
            "maxTasks": 1, "lockDuration": 10_000, "asyncResponseTimeout": 5000})
        worker.fetch_and_execute("send-sms", send_sms)
        episode = httpx.get(f"{base}/api/instances/{instance_id}", headers=lead).json()
    assert seen == {"phone": "+15550100", "key": "visit-9"}
    assert episode["data"]["sms_sent"] is True and episode["data"]["provider_id"] == 4711
    assert [task["name"] for task in episode["open_tasks"]] == ["Review"]
