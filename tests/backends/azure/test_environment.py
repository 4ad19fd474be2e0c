"""The compute image: a pinned, dated base, what its build checks, and the R packages a run declares."""

from __future__ import annotations

import json
import re

from azureml_parallel_r.backends.azure.environment import image_dockerfile, image_identity
from azureml_parallel_r.backends.azure.v1_step import image_pip_packages
from azureml_parallel_r.shipped_code import COMPUTE_DOCKERFILE, session_r_function

DOCKERFILE = COMPUTE_DOCKERFILE.read_text(encoding="utf-8")
# the Python import name of each pip package the image installs
IMPORTS = {
    "azureml-core": "azureml.core",
    "azureml-dataset-runtime": "azureml.dataprep",
    "azureml-telemetry": "azureml.telemetry",
    "mltable": "mltable",
}


def test_the_base_image_is_a_dated_tag_not_latest() -> None:
    (base,) = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert re.fullmatch(r"mcr\.microsoft\.com/azureml/openmpi4\.1\.0-ubuntu22\.04:\d{8}\.v\d+", base), base


def test_the_build_imports_every_package_the_image_installs() -> None:
    """A broken image fails at build: each pip package's module is imported by the build's check."""
    check = DOCKERFILE[DOCKERFILE.index('RUN python3 -c "import') :]
    installed = {re.split(r"[\[=<>]", requirement)[0] for requirement in image_pip_packages(DOCKERFILE)}
    assert installed - {"setuptools"} == set(IMPORTS)
    assert all(re.search(rf"\b{re.escape(module)}\b", check.split("\n")[0]) for module in IMPORTS.values())


def test_the_declaration_is_in_the_dockerfile_and_its_identity() -> None:
    assert image_dockerfile([]) == DOCKERFILE
    jpeg = [{"name": "jpeg", "version": None, "minimum": "0.1", "source": "r_packages"}]
    declared = image_dockerfile(jpeg)
    assert declared.startswith(DOCKERFILE.rstrip("\n")) and image_dockerfile(jpeg) == declared
    steps = [json.loads(line[4:]) for line in declared.splitlines() if line.startswith('RUN ["')]
    assert [json.loads(step[4]) for step in steps] == [jpeg, jpeg]  # Rscript --vanilla -e CODE DECLARED ...
    assert image_identity(declared) != image_identity(image_dockerfile([{**jpeg[0], "minimum": "0.2"}]))


def test_the_images_check_is_the_r_sessions_own() -> None:
    """The build's check runs session.R's package_problems, cut out of session.R whole."""
    source = session_r_function("package_problems")
    assert source.startswith("package_problems <- function(named, declared) {") and source.endswith("\n}\n")
    steps = [
        json.loads(line[4:])
        for line in image_dockerfile(
            [{"name": "x", "version": None, "minimum": None, "source": "r_packages"}]
        ).splitlines()
        if line.startswith('RUN ["')
    ]
    assert steps[-1][3].startswith(source)


def test_the_images_r_has_the_recommended_packages_the_toolchain_and_the_version_the_repository_matches() -> None:
    """A declared package that imports Matrix (glmnet, lme4) or has C code builds: r-recommended and r-base-dev are
    installed; the build stops when the R is not the one the package snapshot was chosen for."""
    from azureml_parallel_r.backends.azure.environment import IMAGE_R_VERSION, R_BINARY_REPOSITORY

    install = DOCKERFILE[DOCKERFILE.index("RUN apt-get update") :].split("\n\n")[0]
    assert {"r-base-core", "r-recommended", "r-base-dev"} <= set(install.split())
    assert "--no-install-recommends" in install  # what is wanted is named, not pulled in
    assert f'getRversion() == "{IMAGE_R_VERSION}"' in DOCKERFILE and "library(p, character.only" in DOCKERFILE
    assert '"Matrix"' in DOCKERFILE and "cc --version" in DOCKERFILE
    snapshot = r"https://packagemanager\.posit\.co/cran/__linux__/jammy/\d{4}-\d{2}-\d{2}"
    assert re.fullmatch(snapshot, R_BINARY_REPOSITORY)
    assert "mlflow" not in DOCKERFILE.split("RUN python3 -m pip install")[1].split("\n\n")[0]
