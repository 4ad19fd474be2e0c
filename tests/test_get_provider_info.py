"""The provider's metadata: valid for Airflow's schema, and what Airflow makes of it (hooks, the connection form)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azureml_parallel_r import __version__
from azureml_parallel_r.get_provider_info import CONN_FIELDS, get_provider_info


def test_the_provider_info_is_valid_for_airflows_schema_and_names_what_exists() -> None:
    import importlib

    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "azureml-parallel-r" and info["versions"] == [__version__]
    modules = [
        m
        for key in ("operators", "sensors", "hooks", "triggers")
        for group in info[key]
        for m in group["python-modules"]
    ]
    for module in modules:
        importlib.import_module(module)
    for dotted in [c["hook-class-name"] for c in info["connection-types"]] + info["extra-links"]:
        module, _, name = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), name), dotted


@pytest.mark.filterwarnings("ignore:ProvidersManager.hooks is deprecated")  # what the UI server reads
def test_airflow_discovers_the_provider_its_hook_and_its_connection_form() -> None:
    """The editable install of this checkout registers the same entry point as the wheel (pyproject.toml)."""
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.providers["azureml-parallel-r"].version == __version__
    hook = manager.hooks["azureml_parallel_r"]
    assert hook.hook_class_name == "azureml_parallel_r.hooks.parallel_run.AzureMLParallelRunHook"
    assert hook.connection_testable  # the UI's Test button calls AzureMLParallelRunHook.test_connection
    widgets = {
        k.removeprefix("extra__azureml_parallel_r__"): v
        for k, v in manager.connection_form_widgets.items()
        if k.startswith("extra__azureml_parallel_r__")
    }
    assert set(widgets) == set(CONN_FIELDS)
    assert widgets["engine"].field["schema"]["enum"] == ["local", "azureml_v2", "azureml"]
    assert widgets["tenantId"].field["schema"]["title"] == "Tenant ID (service principal)"
    behaviour = manager.field_behaviours["azureml_parallel_r"]
    assert behaviour["hidden_fields"] == ["host", "port", "schema"]
    assert behaviour["relabeling"]["password"] == "Client secret (service principal)"


def test_reading_the_provider_info_imports_nothing_of_the_package() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from azureml_parallel_r.get_provider_info import get_provider_info; get_provider_info(); "
        "print(sorted(m for m in sys.modules if m.startswith(('azureml_parallel_r.', 'azure', 'airflow'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['azureml_parallel_r', 'azureml_parallel_r.get_provider_info']"


def test_the_connection_id_follows_airflows_rule_with_the_connection_type() -> None:
    """A provider's hook names its id parameter ``<type>_conn_id`` and its default ``<type>_default``."""
    import inspect

    from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
    from azureml_parallel_r.operators.parallel_run import SubmitParallelRunOperator

    hook = AzureMLParallelRunHook
    assert (hook.conn_name_attr, hook.default_conn_name) == (f"{hook.conn_type}_conn_id", f"{hook.conn_type}_default")
    assert hook.conn_name_attr in inspect.signature(hook).parameters
    submit = inspect.signature(SubmitParallelRunOperator).parameters
    assert submit[hook.conn_name_attr].default == hook.default_conn_name
