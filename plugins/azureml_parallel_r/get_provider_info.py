"""The provider's metadata, as Airflow's ProvidersManager reads it from the ``apache_airflow_provider`` entry point of
an installed distribution (``pip install azureml-parallel-r``): its hooks, connection type with its form,
operators, sensors, triggers and extra links. It imports nothing: Airflow reads it before any hook is imported.

The connection form (``conn-fields`` and ``ui-field-behaviour``, Airflow 3.2+'s declarative connection fields):
the engine and the fields each engine needs, in the Microsoft Azure provider's field names where they fit
(``tenantId``, ``subscriptionId``, ``resource_group_name``, ``managed_identity_client_id``,
``workload_identity_tenant_id``, ``cloud_environment``; login and password relabelled as its Data Factory
connection does), the standard fields nobody uses (host, port, schema) hidden. A
field one engine does not use says which engine it is for: the form cannot show fields by the engine chosen.
"""

from __future__ import annotations

from typing import Any

CONNECTION_TYPE = "azureml_parallel_r"
ENGINES = ["local", "azureml_v2", "azureml"]
ENGINE_LABELS = {
    "local": "local: the embedded engine (no Azure)",
    "azureml_v2": "azureml_v2: Azure ML SDK v2 (azure-ai-ml)",
    "azureml": "azureml: Azure ML SDK v1 (azureml-core)",
}
AUTH_LABELS = {
    "auto": "auto (from the fields)",
    "service_principal": "service principal (Client ID, secret, tenant)",
    "managed_identity": "managed identity",
    "cli": "Azure CLI login",
    "default": "DefaultAzureCredential",
    "workload_identity": "workload identity (AKS)",
}
AUTH_MODES = list(AUTH_LABELS)
# the Microsoft Azure provider's cloud_environment values (its connection forms), the public cloud first
CLOUDS = ["AzurePublicCloud", "AzureUSGovernment", "AzureChinaCloud"]


def _text(label: str, description: str, default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if default is not None:
        schema["default"] = default
    return {"label": label, "description": description, "schema": schema}


CONN_FIELDS: dict[str, Any] = {
    "engine": {
        "label": "Engine",
        "description": "local: the embedded engine over a folder (no Azure); azureml_v2: Azure ML SDK v2 "
        "(azure-ai-ml, install azureml-parallel-r[sdk-v2]); azureml: Azure ML SDK v1 "
        "(install azureml-parallel-r[sdk-v1]).",
        "schema": {"type": "string", "enum": ENGINES, "default": "local", "values_display": ENGINE_LABELS},
    },
    "datastore_root": _text(
        "Datastore folder (local engine)",
        "An existing folder that holds r-script-inputs/<date>/ and receives r-script-outputs/.",
    ),
    "process_count_per_node": {
        "label": "Processes (local engine)",
        "description": "Worker processes when the DAG leaves process_count_per_node unset (empty: one per core).",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "subscriptionId": _text("Subscription ID (Azure ML)", "The workspace's Azure subscription."),
    "resource_group_name": _text("Resource group (Azure ML)", "The workspace's resource group."),
    "workspace_name": _text("Workspace (Azure ML)", "The Azure Machine Learning workspace's name."),
    "auth": {
        "label": "Authentication (Azure ML)",
        "description": "auto: a service principal when Client ID and secret are set, else DefaultAzureCredential.",
        "schema": {"type": "string", "enum": AUTH_MODES, "default": "auto", "values_display": AUTH_LABELS},
    },
    "tenantId": _text("Tenant ID (service principal)", "The Entra ID tenant of the service principal."),
    "managed_identity_client_id": _text(
        "Managed identity client ID (Azure ML)", "A user-assigned identity's client ID (empty: system-assigned)."
    ),
    "workload_identity_tenant_id": _text(
        "Workload identity tenant ID (Azure ML)",
        "With DefaultAzureCredential and a managed identity client ID: the tenant its workload identity signs in to.",
    ),
    "cloud_environment": {
        "label": "Azure cloud (Azure ML)",
        "description": "The sovereign cloud of the workspace: its sign-in authority and endpoints.",
        "schema": {"type": "string", "enum": CLOUDS, "default": CLOUDS[0]},
    },
    "compute_target": _text("Compute cluster (Azure ML)", "The AmlCompute cluster the step runs on.", "cpu-cluster"),
    "datastore": _text("Datastore (Azure ML)", "The datastore of the inputs and outputs (empty: the default)."),
    "environment_name": _text(
        "Environment (Azure ML)",
        "A registered environment, name or name:version (empty: built from include/environment/Dockerfile).",
    ),
    "experiment_name": _text("Experiment (Azure ML)", "Where runs are recorded.", "r-parallel-batch"),
    "job_identity": _text(
        "Job identity (Azure ML SDK v2)",
        "What the job reads a datastore without credentials with: user_identity, managed_identity, "
        "managed_identity:<client id> or aml_token (empty: Azure's default, the compute cluster's managed identity).",
    ),
    "r_packages": _text(
        "R packages",
        "R packages every R script needs, comma-separated: name, name==version or name>=version (besides an renv.lock "
        "or DESCRIPTION next to the script).",
    ),
    "r_script_dirs": _text(
        "More R script folders",
        "Absolute folders, separated by ':', that R scripts may come from besides the shipped include/r.",
    ),
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["host", "port", "schema"],
    "relabeling": {"login": "Client ID (service principal)", "password": "Client secret (service principal)"},
    "placeholders": {"extra": '{"source_directory": "...", "retry_backoff": 2}'},
}


def get_provider_info() -> dict[str, Any]:
    """The provider info Airflow validates against its ``provider_info.schema.json``."""
    from azureml_parallel_r import __version__

    package = "azureml_parallel_r"
    integration = "Azure Machine Learning parallel R"
    return {
        "package-name": "azureml-parallel-r",
        "name": "Azure ML Parallel R",
        "description": "Run an R script over thousands of files in parallel on Azure Machine Learning (a "
        "ParallelRunStep or a v2 parallel job), or on one machine with the embedded local engine.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": integration,
                "external-doc-url": "https://learn.microsoft.com/azure/machine-learning/how-to-use-parallel-job-in-pipeline",
                "tags": ["azure"],
            }
        ],
        "operators": [
            {
                "integration-name": integration,
                "python-modules": [f"{package}.operators.{name}" for name in ("dataset", "parallel_run", "validation")],
            }
        ],
        "sensors": [{"integration-name": integration, "python-modules": [f"{package}.sensors.parallel_run"]}],
        "hooks": [{"integration-name": integration, "python-modules": [f"{package}.hooks.parallel_run"]}],
        "triggers": [{"integration-name": integration, "python-modules": [f"{package}.triggers.parallel_run"]}],
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": f"{package}.hooks.parallel_run.AzureMLParallelRunHook",
                "hook-name": "Azure ML Parallel R",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "extra-links": [f"{package}.links.PipelineRunLink", f"{package}.links.RunReportLink"],
    }
