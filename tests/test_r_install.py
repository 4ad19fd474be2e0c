"""A user's own R packages on the local engine, end to end: declared next to the script, installed by
``python -m azureml_parallel_r.r_install`` (what ``scripts/setup.sh --r-packages`` runs) from a CRAN-like repository,
and checked before any file runs. CRAN is not reachable here: the repository is a local one the test builds with
``R CMD build`` and ``tools::write_PACKAGES`` from a tiny package of its own."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from azureml_parallel_r import status
from azureml_parallel_r.backends.local import LocalBackend
from azureml_parallel_r.examples.samples import write_png
from azureml_parallel_r.models import RunRequest
from azureml_parallel_r.r_install import main as r_install
from azureml_parallel_r.r_scripts import RScriptError
from tests.waiting import wait_for_end

# installing from source: R's package builds (900 s) after the apt steps (600 s)
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500 + 120)]
KEY = {"dag_id": "d", "dag_run_id": "r", "task_id": "t"}
USES_TINY = """
library(aprtiny)
process_file <- function(input_path, output_dir, args) {
  writeLines(hello(basename(input_path)), file.path(output_dir, "greeting.txt"))
  list(greeting = aprtiny::hello("R"))
}
"""


@pytest.fixture(scope="module")
def local_repo(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A CRAN-like repository (``src/contrib`` with a PACKAGES index) holding source packages of its own: aprtiny
    0.2.0 (plain R), aprmatrix (``Imports: Matrix``, as glmnet and lme4 do) and aprc (C code, compiled at install)."""
    root = tmp_path_factory.mktemp("cran")
    contrib = root / "repo" / "src" / "contrib"
    contrib.mkdir(parents=True)
    for name, version, imports, files in (
        (
            "aprtiny",
            "0.2.0",
            "",
            {"NAMESPACE": "export(hello)\n", "R/hello.R": "hello <- function(x) paste0('hello ', x)\n"},
        ),
        (
            "aprmatrix",
            "0.1.0",
            "Imports: Matrix\n",
            {
                "NAMESPACE": "importFrom(Matrix, Matrix)\nexport(dense_sum)\n",
                "R/sum.R": "dense_sum <- function(n) sum(Matrix(1, n, n))\n",
            },
        ),
        (
            "aprc",
            "0.1.0",
            "",
            {
                "NAMESPACE": "useDynLib(aprc)\nexport(add)\n",
                "R/add.R": "add <- function(a, b) .Call('apr_add', as.numeric(a), as.numeric(b))\n",
                "src/add.c": "#include <R.h>\n#include <Rinternals.h>\nSEXP apr_add(SEXP a, SEXP b) "
                "{ return ScalarReal(asReal(a) + asReal(b)); }\n",
            },
        ),
    ):
        package = root / name
        (package / "R").mkdir(parents=True)
        (package / "DESCRIPTION").write_text(
            f"Package: {name}\nVersion: {version}\nTitle: A Tiny Package for Tests\nDescription: For the tests.\n"
            f"{imports}License: Apache License 2.0\nAuthor: The azureml-parallel-r tests\n"
            "Maintainer: Tests <tests@example.org>\nEncoding: UTF-8\n"
        )
        for relative, text in files.items():
            (package / relative).parent.mkdir(parents=True, exist_ok=True)
            (package / relative).write_text(text)
        subprocess.run(
            ["R", "CMD", "build", "--no-build-vignettes", "--no-manual", str(package)],
            cwd=contrib,
            check=True,
            capture_output=True,
            timeout=300,
        )
    subprocess.run(
        ["Rscript", "--vanilla", "-e", "tools::write_PACKAGES(commandArgs(TRUE)[1], type = 'source')", str(contrib)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return (root / "repo").as_uri()


def _script(folder: Path, description: str | None) -> Path:
    folder.mkdir(parents=True)
    script = folder / "uses_tiny.r"
    script.write_text(USES_TINY)
    if description is not None:
        (folder / "DESCRIPTION").write_text(description)
    return script


def _run(root: Path, script: Path) -> tuple[LocalBackend, str]:
    backend = LocalBackend(str(root), process_count_per_node=1, r_script_dirs=(str(script.parent),))
    for i, name in enumerate(("a.png", "b.png")):
        write_png(str(root / "r-script-inputs" / "2026-11-30" / name), 8, 8, seed=i)
    dataset = backend.register_file_dataset("r-script-inputs/2026-11-30", name="inputs", tags={})
    request = RunRequest(dataset=dataset, output_path="r-script-outputs/{run-id}", run_key=KEY, r_script=str(script))
    return backend, backend.submit(request).run_id


def test_declared_packages_install_from_a_repository_and_the_script_runs(local_repo, tmp_path, monkeypatch) -> None:
    library = tmp_path / "r-library"
    script = _script(tmp_path / "scripts", "Package: mine\nImports: aprtiny (>= 0.2)\n")
    assert r_install([str(script), "--repo", local_repo, "--library", str(library), "--no-apt"]) == 0
    assert (library / "aprtiny" / "DESCRIPTION").is_file()
    monkeypatch.setenv("R_LIBS", str(library))  # the library the workers' R reads (as a deployment would set it)
    backend, run_id = _run(tmp_path / "datastore", script)
    assert backend.check_r_script(str(script)) == str(script)  # the pre-submit check agrees
    assert wait_for_end(backend, run_id).status == status.FINISHED
    rows = [json.loads(row) for row in backend.fetch_results(run_id).rows]
    assert sorted(row["relative_path"] for row in rows) == ["a.png", "b.png"]
    assert {row["value"]["greeting"] for row in rows} == {"hello R"}


def test_a_package_that_is_not_installed_fails_init_naming_it_and_where_to_declare_it(tmp_path) -> None:
    script = _script(tmp_path / "scripts", None)  # named by the script only, installed nowhere
    backend, run_id = _run(tmp_path / "datastore", script)
    with pytest.raises(RScriptError) as refused:  # before a submission ...
        backend.check_r_script(str(script))
    assert "aprtiny (named by the script, not declared: not installed)" in str(refused.value)
    assert "renv.lock" in str(refused.value) and "r_packages" in str(refused.value)
    state = wait_for_end(backend, run_id)  # ... and in init(), before any file, on the engine itself
    assert state.status == status.FAILED
    logs = backend.fetch_results(run_id).logs
    assert "aprtiny (named by the script, not declared: not installed)" in "\n".join(logs.values())


def test_a_version_the_repository_cannot_give_fails_the_install_naming_it(local_repo, tmp_path, capsys) -> None:
    script = _script(tmp_path / "scripts", "Package: mine\nImports: aprtiny (>= 9.0)\n")
    library = tmp_path / "r-library"
    assert r_install([str(script), "--repo", local_repo, "--library", str(library), "--no-apt"]) == 1
    assert "aprtiny >= 9.0 (DESCRIPTION: 0.2.0 installed)" in capsys.readouterr().err


def test_the_compute_images_install_and_check_steps_run_as_the_image_build_runs_them(local_repo, tmp_path) -> None:
    """The two RUN instructions the Azure engines add to the compute image, executed here as Docker would run them
    (exec form: no shell), with this test's repository and library in place of Posit's and the image's."""
    import os

    from azureml_parallel_r.backends.azure.environment import R_BINARY_REPOSITORY, SITE_LIBRARY, image_dockerfile

    def run_steps(packages: list[dict]) -> list[subprocess.CompletedProcess]:
        steps = [json.loads(line[4:]) for line in image_dockerfile(packages).splitlines() if line.startswith('RUN ["')]
        assert [step[:3] for step in steps] == [["Rscript", "--vanilla", "-e"]] * 2
        swap = {R_BINARY_REPOSITORY: local_repo, SITE_LIBRARY: str(library)}
        env = {**os.environ, "R_LIBS": str(library)}
        return [
            subprocess.run([swap.get(arg, arg) for arg in step], env=env, capture_output=True, text=True, timeout=600)
            for step in steps
        ]

    library = tmp_path / "site-library"
    done = run_steps([{"name": "aprtiny", "version": None, "minimum": "0.2", "source": "DESCRIPTION"}])
    assert [d.returncode for d in done] == [0, 0], done[-1].stderr
    assert (library / "aprtiny" / "DESCRIPTION").is_file()
    refused = run_steps([{"name": "aprtiny", "version": None, "minimum": "9", "source": "DESCRIPTION"}])[-1]
    assert refused.returncode != 0
    said = "declared R packages that do not load in the image: aprtiny >= 9 (DESCRIPTION: 0.2.0 installed)"
    assert said in refused.stderr


def test_a_package_that_imports_matrix_and_one_with_c_code_build_into_the_image(local_repo, tmp_path) -> None:
    """The image's own install and check instructions (exec form, as Docker runs them: no shell), over a repository
    holding a package that imports Matrix and one whose C code compiles at install: the image has R's recommended
    packages and the toolchain (include/environment/Dockerfile), as this machine does (scripts/setup.sh)."""
    import os

    from azureml_parallel_r.backends.azure.environment import image_dockerfile

    library = tmp_path / "site-library"
    declared = [
        {"name": "aprmatrix", "version": None, "minimum": None, "source": "DESCRIPTION"},
        {"name": "aprc", "version": "0.1.0", "minimum": None, "source": "renv.lock"},
    ]
    dockerfile = image_dockerfile(declared, repository=local_repo, library=str(library))
    steps = [json.loads(line[4:]) for line in dockerfile.splitlines() if line.startswith('RUN ["')]
    env = {**os.environ, "R_LIBS": str(library)}
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    assert (library / "aprc" / "libs" / "aprc.so").is_file()  # compiled here, from its C source
    used = subprocess.run(
        ["Rscript", "--vanilla", "-e", "cat(aprc::add(1, 2), aprmatrix::dense_sum(2))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert used.stdout.split() == ["3", "4"], used.stderr
