"""Write docs/reference.md: every operator's, sensor's, trigger's and hook's parameters, and the connection form's
fields, from their docstrings and signatures, so the reference cannot drift from the code.

    .venv/bin/python scripts/generate_reference.py            rewrite docs/reference.md
    .venv/bin/python scripts/generate_reference.py --check    exit 1 when docs/reference.md is not what it writes

tests/test_reference_docs.py runs the check, and that every parameter of these classes has a ``:param x:`` line.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugins"))
REFERENCE = REPO / "docs" / "reference.md"

# (section, class path), in the order a DAG uses them
CLASSES = [
    ("Operators", "azureml_parallel_r.operators.dataset.RegisterFileDatasetOperator"),
    ("Operators", "azureml_parallel_r.operators.parallel_run.SubmitParallelRunOperator"),
    ("Operators", "azureml_parallel_r.operators.validation.ValidateParallelRunOutputsOperator"),
    ("Sensor", "azureml_parallel_r.sensors.parallel_run.ParallelRunSensor"),
    ("Trigger", "azureml_parallel_r.triggers.parallel_run.ParallelRunTrigger"),
    ("Hook", "azureml_parallel_r.hooks.parallel_run.AzureMLParallelRunHook"),
]
PARAM = re.compile(r"^:param (\w+):\s*(.*)$")
ROLE = re.compile(r":(?:class|meth|func|mod|attr):`~?(?:[\w.]+\.)?([\w]+)`")


def markdown(text: str) -> str:
    """A docstring's reStructuredText as Markdown: ``code`` and Sphinx roles as code spans."""
    return ROLE.sub(r"`\1`", text).replace("``", "`")


def load(path: str) -> type:
    """The class at ``module.Class``."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def split_docstring(cls: type) -> tuple[str, str, dict[str, str]]:
    """A class docstring's summary line, its description and its ``:param name:`` texts (continuation lines
    joined)."""
    text = inspect.cleandoc(cls.__doc__ or "")
    lines = text.splitlines()
    summary = lines[0] if lines else ""
    body: list[str] = []
    params: dict[str, str] = {}
    current: str | None = None
    for line in lines[1:]:
        found = PARAM.match(line)
        if found:
            current = found.group(1)
            params[current] = found.group(2).strip()
        elif current is not None and line.startswith((" ", "\t")) and line.strip():
            params[current] += " " + line.strip()
        elif current is None:
            body.append(line)
        else:
            current = None if not line.strip() else current
    return markdown(summary), markdown("\n".join(body).strip()), {k: markdown(v) for k, v in params.items()}


def written_defaults(cls: type) -> dict[str, str]:
    """``__init__``'s defaults as the source writes them, for those computed from configuration (a call), whose
    value depends on the machine that imports the class."""
    source = textwrap.dedent(inspect.getsource(cls.__init__))  # type: ignore[misc]
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.FunctionDef)
    arguments = function.args
    pairs = [
        *zip(arguments.args[len(arguments.args) - len(arguments.defaults) :], arguments.defaults, strict=True),
        *((a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d is not None),
    ]
    return {argument.arg: ast.unparse(default) for argument, default in pairs if isinstance(default, ast.Call)}


def parameters(cls: type) -> list[tuple[str, str, str]]:
    """``__init__``'s own parameters: (name, annotation, default)."""
    computed = written_defaults(cls)
    found = []
    for name, parameter in inspect.signature(cls.__init__).parameters.items():  # type: ignore[misc]
        if name == "self" or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        annotation = "" if parameter.annotation is parameter.empty else str(parameter.annotation)
        if name in computed:
            default = computed[name]
        elif parameter.default is parameter.empty:
            default = "required"
        else:
            default = repr(parameter.default)
        found.append((name, annotation, default))
    return found


def cell(text: str) -> str:
    """Text for one cell of a Markdown table."""
    return text.replace("|", "\\|").replace("\n", " ")


def class_section(path: str) -> str:
    cls = load(path)
    summary, body, documented = split_docstring(cls)
    templated = set(getattr(cls, "template_fields", ()))
    rows = []
    for name, annotation, default in parameters(cls):
        mark = " (templated)" if name in templated else ""
        rows.append(f"| `{name}`{mark} | `{cell(annotation)}` | `{cell(default)}` | {cell(documented.get(name, ''))} |")
    parts = [f"### `{cls.__name__}`", "", f"`{path}`", "", summary, ""]
    if body:
        parts += [body, ""]
    parts += ["| parameter | type | default | meaning |", "|---|---|---|---|", *rows, ""]
    return "\n".join(parts)


def connection_section() -> str:
    from azureml_parallel_r.get_provider_info import CONN_FIELDS, get_provider_info

    (connection,) = get_provider_info()["connection-types"]
    behaviour = connection.get("ui-field-behaviour", {})
    rows = []
    for name, field in CONN_FIELDS.items():
        schema = field.get("schema", {})
        default = schema.get("default", "")
        choices = ", ".join(f"`{value}`" for value in schema.get("enum", []))
        meaning = field.get("description", "") + (f" One of {choices}." if choices else "")
        shown = f"`{cell(str(default))}`" if default != "" else ""
        rows.append(f"| `{name}` | {cell(field.get('label', name))} | {shown} | {cell(meaning)} |")
    relabelled = ", ".join(f"`{k}` as {v!r}" for k, v in behaviour.get("relabeling", {}).items())
    hidden = ", ".join(f"`{name}`" for name in behaviour.get("hidden_fields", []))
    return "\n".join(
        [
            "## The connection",
            "",
            f"Type `{connection['connection-type']}` ({connection['hook-name']}), hook "
            f"`{connection['hook-class-name']}`. The standard fields: {relabelled}; hidden: {hidden}. Its extra "
            "fields, which a `generic` connection's extra may hold as JSON too:",
            "",
            "| extra | label | default | meaning |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    )


def render() -> str:
    parts = [
        "# Reference",
        "",
        "<!-- generated by scripts/generate_reference.py from the classes' docstrings and signatures: do not edit -->",
        "",
        "Every parameter of the package's operators, sensor, trigger and hook, and the connection's fields. "
        "*Templated* parameters take Jinja (`{{ ds }}`, `{{ params.x }}`). The DAG that uses them is "
        "[dags/r_parallel_batch.py](../dags/r_parallel_batch.py) ([the DAG and its form](dag.md)).",
        "",
    ]
    section = None
    for name, path in CLASSES:
        if name != section:
            parts += [f"## {name}", ""]
            section = name
        parts.append(class_section(path))
    parts.append(connection_section())
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        if REFERENCE.read_text(encoding="utf-8") != text:
            print("docs/reference.md is stale: run .venv/bin/python scripts/generate_reference.py", file=sys.stderr)
            return 1
        return 0
    REFERENCE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
