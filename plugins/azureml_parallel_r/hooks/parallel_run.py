"""Hook: the Airflow connection that picks the engine, and the backend built from it.

The connection is either of this provider's type (``azureml_parallel_r``, with its form: see
:mod:`azureml_parallel_r.get_provider_info`) or a ``generic`` one whose extra holds the same settings as JSON;
both are read the same way (:func:`connection_settings`)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from azureml_parallel_r import get_provider_info as _provider
from azureml_parallel_r.airflow_versions import AirflowNotFoundException
from azureml_parallel_r.backends.base import ParallelRunBackend
from azureml_parallel_r.exceptions import ConfigurationError

# the engines and the connection type are the provider's (get_provider_info imports nothing: its form lists them)
ENGINES = tuple(_provider.ENGINES)
CONNECTION_TYPE = _provider.CONNECTION_TYPE
# the connection form's names (the Microsoft Azure provider's) -> the names the engines read
FORM_NAMES = {"subscriptionId": "subscription_id", "resource_group_name": "resource_group", "tenantId": "tenant_id"}
FORM_FIELD_OF = {engine_name: form_name for form_name, engine_name in FORM_NAMES.items()}
# Azure ML SDK v1 stops at Python 3.11 (pyproject's [sdk-v1] extra carries the same marker)
V1_PYTHON_LIMIT = (3, 12)
SDK_EXTRAS = {"azureml": ("Azure ML SDK v1", "sdk-v1"), "azureml_v2": ("Azure ML SDK v2 (azure-ai-ml)", "sdk-v2")}
LOCAL_EXAMPLE = {"conn_type": CONNECTION_TYPE, "extra": {"engine": "local", "datastore_root": "/path/to/datastore"}}
AZURE_EXAMPLE = {
    "conn_type": CONNECTION_TYPE,
    "extra": {
        "engine": "azureml_v2",
        "subscriptionId": "<subscription id>",
        "resource_group_name": "<resource group>",
        "workspace_name": "<workspace>",
    },
}


def inline_in_dag_test() -> bool:
    """True when a trigger runs inline in ``dag.test()`` / ``airflow dags test``: the task SDK then talks to an
    in-process supervisor (airflow/sdk/execution_time/supervisor.py, ``run_trigger_in_process``)."""
    from airflow.sdk.execution_time import task_runner

    return type(getattr(task_runner, "SUPERVISOR_COMMS", None)).__name__ == "InProcessSupervisorComms"


class ConnectionNotConfiguredError(ConfigurationError):
    """The Airflow connection is missing, unreadable, or does not say which engine to use (no retry can fix it)."""


def connection_settings(extra: dict[str, Any]) -> dict[str, Any]:
    """The engine settings of a connection's extra, from the connection form or generic JSON alike: form field
    names mapped to the engines' names (``tenantId`` -> ``tenant_id``), an ``extra__azureml_parallel_r__`` prefix
    (older UIs) dropped, and fields left empty in the form (``""`` or null) left out.

    :param extra: the connection's ``extra_dejson``.
    """
    settings: dict[str, Any] = {}
    for key, value in extra.items():
        name = key.removeprefix(f"extra__{CONNECTION_TYPE}__")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        settings.setdefault(FORM_NAMES.get(name, name), value)
    return settings


def _configure_hint(conn_id: str) -> str:
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    return (
        f"Configure it one of two ways: for the embedded local engine, {variable}='{json.dumps(LOCAL_EXAMPLE)}'; "
        f"for Azure ML, {variable}='{json.dumps(AZURE_EXAMPLE)}' (plus credentials, see docs/workspace.md; "
        '"engine": "azureml" runs the same on Azure ML SDK v1). '
        'A connection of type "Azure ML Parallel R" (azureml_parallel_r) created in the UI, whose form has these '
        "fields, or with `airflow connections add`, works the same way."
    )


class AzureMLParallelRunHook(BaseHook):
    """Owns the connection and builds the backend (engine) it selects.

    The connection's extra ``engine`` picks the engine: ``local`` needs ``datastore_root`` (and may set
    ``process_count_per_node`` and ``source_directory``); ``azureml`` (Azure ML SDK v1) and ``azureml_v2``
    (SDK v2, azure-ai-ml) need the workspace coordinates and take the same fields, so moving a workspace from
    v1 to v2 changes ``engine`` only.
    There is no fall-back: a missing or unrecognised connection is an error that names both ways to
    configure it.

    :param azureml_parallel_r_conn_id: the Airflow connection id.
    """

    conn_name_attr = "azureml_parallel_r_conn_id"
    default_conn_name = "azureml_parallel_r_default"
    conn_type = CONNECTION_TYPE
    hook_name = "Azure ML Parallel R"

    def __init__(self, azureml_parallel_r_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.conn_id = azureml_parallel_r_conn_id
        self._backend: ParallelRunBackend | None = None

    @cached_property
    def extras(self) -> dict[str, Any]:
        try:
            connection = self.get_connection(self.conn_id)
        except AirflowNotFoundException as exc:
            raise self._not_defined() from exc
        return self._settings_of(connection)

    def _settings_of(self, connection: Any) -> dict[str, Any]:
        """The connection's engine settings; an extra that is not a JSON object is refused, saying so (Airflow reads it
        as ``{}``, which would end as "engine=None"). The extra's text is never quoted: it may hold secrets."""
        raw = connection.extra
        if raw:
            try:
                parsed = json.loads(raw) if isinstance(raw, str) else raw
            except json.JSONDecodeError as exc:
                raise ConnectionNotConfiguredError(
                    f"Airflow connection {self.conn_id!r}: its extra is not valid JSON ({exc.msg}, line {exc.lineno} "
                    f"column {exc.colno}); write it as a JSON object. {_configure_hint(self.conn_id)}"
                ) from None
            if not isinstance(parsed, dict):
                raise ConnectionNotConfiguredError(
                    f"Airflow connection {self.conn_id!r}: its extra must be a JSON object ({{...}}), not a JSON "
                    f"{type(parsed).__name__}. {_configure_hint(self.conn_id)}"
                )
        return connection_settings(connection.extra_dejson)

    def get_conn(self) -> ParallelRunBackend:
        """The engine the connection selects (built once per hook): the one way to it, as the Microsoft Azure
        provider's hooks give their SDK client."""
        if self._backend is None:
            self._backend = self._build_backend(self._engine(self.extras), self.extras)
        return self._backend

    async def aget_conn(self) -> ParallelRunBackend:
        """:meth:`get_conn` for triggers: the connection is read asynchronously, the engine built in a thread."""
        if self._backend is None:
            try:
                connection = await self._aconnection()
            except AirflowNotFoundException as exc:
                raise self._not_defined() from exc
            self.__dict__["extras"] = extras = self._settings_of(connection)
            self._backend = await asyncio.to_thread(self._build_backend, self._engine(extras), extras)
        return self._backend

    async def _aconnection(self) -> Any:
        """The connection, read asynchronously; inline in ``airflow dags test`` read the synchronous way.

        Airflow 3.3.2 runs a deferred task's trigger inline in ``dag.test()`` with an in-process supervisor whose
        comms have ``send`` but no ``asend`` (airflow/sdk/execution_time/supervisor.py,
        ``InProcessSupervisorComms``), and the async lookup swallows the AttributeError as "not found", so a
        connection kept in the metadata database looks undefined there. Only in that case the synchronous lookup,
        which that supervisor serves, is used: inline, no other trigger shares the event loop.
        """
        try:
            return await self.aget_connection(self.conn_id)
        except AirflowNotFoundException:
            if not inline_in_dag_test():
                raise
            return self.get_connection(self.conn_id)

    def _not_defined(self) -> ConnectionNotConfiguredError:
        variable = f"AIRFLOW_CONN_{self.conn_id.upper()}"
        value = os.environ.get(variable)
        if value is not None and value.lstrip().startswith("{"):
            try:
                json.loads(value)
            except ValueError as exc:  # Airflow skips a connection it cannot read: say why
                return ConnectionNotConfiguredError(
                    f"{variable} is set but is not valid JSON ({exc}), so Airflow has no connection {self.conn_id!r}. "
                    f"{_configure_hint(self.conn_id)}"
                )
        return ConnectionNotConfiguredError(
            f"Airflow connection {self.conn_id!r} is not defined. {_configure_hint(self.conn_id)}"
        )

    def _engine(self, extras: dict[str, Any]) -> str:
        engine = extras.get("engine")
        if engine not in ENGINES:
            raise ConnectionNotConfiguredError(
                f"Airflow connection {self.conn_id!r} has engine={engine!r} in its extra; expected one of "
                f"{', '.join(ENGINES)}. {_configure_hint(self.conn_id)}"
            )
        return engine

    def _build_backend(self, engine: str, extras: dict[str, Any]) -> ParallelRunBackend:
        """Construct the engine's backend; the one place tests replace to inject a fake."""
        if engine == "local":
            from azureml_parallel_r.backends.local import DEFAULT_SOURCE_DIRECTORY, LocalBackend

            root = self._text(extras, "datastore_root")
            if not root:
                raise ConnectionNotConfiguredError(
                    f"Airflow connection {self.conn_id!r} selects the local engine but has no datastore_root in "
                    f"its extra. {_configure_hint(self.conn_id)}"
                )
            if not os.path.isdir(str(root)):
                raise ConnectionNotConfiguredError(
                    f"Airflow connection {self.conn_id!r}: datastore_root {str(root)!r} does not exist or is not a "
                    "folder; create it (it holds r-script-inputs/<date>/ and receives r-script-outputs/) or fix the "
                    "connection's extra"
                )
            processes = extras.get("process_count_per_node")
            try:
                processes = None if processes is None or processes == "" else int(processes)
            except (TypeError, ValueError):
                raise ConnectionNotConfiguredError(
                    f"Airflow connection {self.conn_id!r}: process_count_per_node must be a whole number, got "
                    f"{processes!r}"
                ) from None
            return LocalBackend(
                str(root),
                source_directory=self._text(extras, "source_directory") or DEFAULT_SOURCE_DIRECTORY,
                process_count_per_node=processes,
                r_script_dirs=self._r_script_dirs(extras),
                r_packages=self._r_packages(extras),
            )
        return self._build_azureml_backend(engine, extras)

    def _build_azureml_backend(self, engine: str, extras: dict[str, Any]) -> ParallelRunBackend:
        from azureml_parallel_r.backends.azure.workspace import WorkspaceSettings
        from azureml_parallel_r.hooks.azureml_auth import (
            AzureAuthConfigError,
            build_auth,
            build_credential,
            cloud_environment,
        )
        from azureml_parallel_r.shipped_code import INCLUDE_DIR

        missing = [key for key in ("subscription_id", "resource_group", "workspace_name") if not extras.get(key)]
        if missing:
            raise ConnectionNotConfiguredError(
                f"Airflow connection {self.conn_id!r} selects the Azure ML engine but its extra lacks "
                f"{', '.join(FORM_FIELD_OF.get(key, key) for key in missing)}. {_configure_hint(self.conn_id)}"
            )
        connection = self.get_connection(self.conn_id)
        try:  # the azure-identity credential reads identity-based datastores on both engines
            credential, described = build_credential(extras, connection.login, connection.password)
            auth = build_auth(extras, connection.login, connection.password)[0] if engine == "azureml" else credential
            authority = cloud_environment(extras)[2]
        except AzureAuthConfigError as exc:
            raise ConnectionNotConfiguredError(f"Airflow connection {self.conn_id!r}: {exc}") from exc
        except ModuleNotFoundError as exc:
            raise self._sdk_missing(engine, exc) from exc
        settings = WorkspaceSettings(
            compute_target=self._text(extras, "compute_target") or "cpu-cluster",
            datastore=self._text(extras, "datastore"),
            environment_name=self._text(extras, "environment_name"),
            experiment_name=self._text(extras, "experiment_name") or "r-parallel-batch",
            source_directory=self._text(extras, "source_directory") or str(INCLUDE_DIR),
            retry_backoff=self._seconds(extras, "retry_backoff", 2.0),
            r_script_dirs=self._r_script_dirs(extras),
            authority=authority,
            job_identity=self._job_identity(extras),
            r_packages=self._r_packages(extras),
        )
        self.log.info(
            "Azure ML workspace %s (resource group %s, SDK %s) with %s; compute %s",
            extras["workspace_name"],
            extras["resource_group"],
            "v1" if engine == "azureml" else "v2",
            described,
            settings.compute_target,
        )
        if engine == "azureml":
            from azureml_parallel_r.backends.azure.v1 import AzureMLBackend

            return AzureMLBackend(lambda: self._connect_workspace(extras, auth), settings, credential)
        try:
            import azure.ai.ml  # noqa: F401  (the v2 SDK: imported by the backend when it first talks to Azure)
        except ModuleNotFoundError as exc:
            raise self._sdk_missing(engine, exc) from exc
        from azureml_parallel_r.backends.azure.v2 import AzureMLV2Backend

        return AzureMLV2Backend(lambda: self._connect_ml_client(extras, credential), credential, settings)

    def _sdk_missing(self, engine: str, error: ModuleNotFoundError) -> ConnectionNotConfiguredError:
        sdk, extra = SDK_EXTRAS[engine]
        if engine == "azureml" and sys.version_info >= V1_PYTHON_LIMIT:
            return ConnectionNotConfiguredError(
                f"Airflow connection {self.conn_id!r} selects engine 'azureml' (Azure ML SDK v1), which cannot be "
                f"installed on Python {sys.version_info[0]}.{sys.version_info[1]}: azureml-pipeline-steps needs "
                "azureml-train-automl-client, whose every release requires Python < 3.12 (so the [sdk-v1] extra "
                'installs nothing here). Use SDK v2 instead: set "engine": "azureml_v2" in the connection and pip '
                "install 'azureml-parallel-r[sdk-v2]' (same workspace, same fields), or run this Airflow on Python "
                "3.11."
            )
        return ConnectionNotConfiguredError(
            f"Airflow connection {self.conn_id!r} selects engine {engine!r}, which needs the {sdk}; it is not "
            f"installed here ({error.name} is missing): pip install 'azureml-parallel-r[{extra}]'"
        )

    def test_connection(self) -> tuple[bool, str]:
        """The UI's "Test" button (and ``airflow connections test``): the preflight (:mod:`azureml_parallel_r.
        preflight`), one line per check. Returns (every check passed, the lines)."""
        from azureml_parallel_r.models import error_text
        from azureml_parallel_r.preflight import run_preflight

        try:
            checks = run_preflight(self.get_conn())
        except Exception as exc:
            return False, error_text(exc)
        return all(check.ok for check in checks), "\n".join(check.line() for check in checks)

    def _text(self, extras: dict[str, Any], key: str) -> str | None:
        """The extra ``key`` as text (None when unset); anything else is refused, naming the field."""
        value = extras.get(key)
        if value is None or isinstance(value, str):
            return value
        raise ConnectionNotConfiguredError(
            f"Airflow connection {self.conn_id!r}: {key} in its extra must be text, got a {type(value).__name__}"
        )

    def _seconds(self, extras: dict[str, Any], key: str, default: float) -> float:
        """The extra ``key`` as a number of seconds; anything else is refused, naming the field."""
        value = extras.get(key, default)
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = -1.0
        if isinstance(value, bool) or not seconds >= 0:
            raise ConnectionNotConfiguredError(
                f"Airflow connection {self.conn_id!r}: {key} in its extra must be a number of seconds, got {value!r}"
            )
        return seconds

    def _job_identity(self, extras: dict[str, Any]) -> str | None:
        """The connection's ``job_identity``, checked (:mod:`azureml_parallel_r.job_identity`)."""
        from azureml_parallel_r.job_identity import parse_job_identity

        value = self._text(extras, "job_identity")
        try:
            parse_job_identity(value)
        except ValueError as exc:
            raise ConnectionNotConfiguredError(f"Airflow connection {self.conn_id!r}: {exc}") from None
        return value or None

    def _r_packages(self, extras: dict[str, Any]) -> tuple[str, ...]:
        """The connection's ``r_packages`` (a list, or the form's comma-separated text)."""
        from azureml_parallel_r.r_scripts import RScriptError, requirement_list

        try:
            return tuple(requirement_list(extras.get("r_packages"), "r_packages"))
        except RScriptError as exc:
            raise ConnectionNotConfiguredError(f"Airflow connection {self.conn_id!r}: {exc}") from None

    def _r_script_dirs(self, extras: dict[str, Any]) -> tuple[str, ...]:
        """The extra ``r_script_dirs``: absolute folders (a list, or one string with ``:`` between folders)."""
        value = extras.get("r_script_dirs") or ()
        if isinstance(value, str):
            dirs = value.split(os.pathsep)
        elif isinstance(value, list | tuple) and all(isinstance(d, str) for d in value):
            dirs = list(value)
        else:
            raise ConnectionNotConfiguredError(
                f"Airflow connection {self.conn_id!r}: r_script_dirs in its extra must be a list of absolute folders "
                f"(or one string with '{os.pathsep}' between them), got {value!r}"
            )
        relative = [d for d in dirs if d and not os.path.isabs(d)]
        if relative:
            raise ConnectionNotConfiguredError(
                f"Airflow connection {self.conn_id!r}: r_script_dirs must be absolute folders, got {relative}"
            )
        return tuple(str(d) for d in dirs if d)

    def _connect_ml_client(self, extras: dict[str, Any], credential: Any) -> Any:
        """The workspace's SDK v2 client (no network call until it is used), in the connection's cloud. azure-ai-ml
        records the cloud process-wide (``AZUREML_CURRENT_CLOUD``, set by ``MLClient``); the cloud is always passed,
        so each client built here sets its own."""
        from azureml_parallel_r.backends.azure.v2_job import ml_client
        from azureml_parallel_r.hooks.azureml_auth import cloud_environment

        _name, cloud, _authority = cloud_environment(extras)
        return ml_client(
            credential, extras["subscription_id"], extras["resource_group"], extras["workspace_name"], cloud=cloud
        )

    def _connect_workspace(self, extras: dict[str, Any], auth: Any) -> Any:
        """Connect to the workspace with SDK v1 (a network call)."""
        from azureml.core import Workspace

        return Workspace.get(
            name=extras["workspace_name"],
            subscription_id=extras["subscription_id"],
            resource_group=extras["resource_group"],
            auth=auth,
        )
