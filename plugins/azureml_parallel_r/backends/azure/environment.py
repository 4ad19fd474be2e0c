"""The compute image of a run: the shipped Dockerfile, plus the R packages the run's R script declares
(``renv.lock``, ``DESCRIPTION``, ``r_packages``: :mod:`azureml_parallel_r.compute.r_packages`), so that a user's
script finds its packages on the cluster without a Dockerfile of its own.

The packages are installed at image build, with the same R code that installs them on a worker
(:data:`azureml_parallel_r.r_install.R_INSTALL`), from Posit Package Manager's repository of binary packages for the
image's Ubuntu release (22.04, "jammy"): a binary installs in seconds where a source package compiles for minutes.
Posit serves binaries to a client that names its R version and platform in its user agent (the HTTPUserAgent
setting of Posit's own instructions for Linux binaries). A version pinned by ``renv.lock`` or ``==`` comes from the
repository's archive when the current one differs, and then builds from source. The build checks every declared
package with the R session's own check (session.R's ``package_problems``), so a bad declaration fails the image
build, not every node.

The declaration is part of the image's identity: the Dockerfile text carries it (in the instructions, as JSON), so
the same declaration gives the same Dockerfile and the same environment (v2: the anonymous environment's version
is the build context's hash; v1: the environment's name carries a hash of the Dockerfile), and a changed one builds
a new image. Without declared packages the image is the shipped Dockerfile unchanged (v2: its own folder is the
build context, so its environment version stays what it was).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any

from azureml_parallel_r.shipped_code import COMPUTE_DOCKERFILE, session_r_function

# The image's R (include/environment/Dockerfile): Ubuntu 22.04's own, r-base-core 4.1.2.
IMAGE_R_VERSION = "4.1.2"
# The R packages the image has without a declaration: R's base packages, its recommended ones (r-recommended) and the
# entry script's own (r-cran-png, r-cran-jpeg, r-cran-jsonlite)
IMAGE_R_PACKAGES = frozenset(
    {
        "base",
        "compiler",
        "datasets",
        "grDevices",
        "graphics",
        "grid",
        "methods",
        "parallel",
        "splines",
        "stats",
        "stats4",
        "tcltk",
        "tools",
        "utils",
        "KernSmooth",
        "MASS",
        "Matrix",
        "boot",
        "class",
        "cluster",
        "codetools",
        "foreign",
        "lattice",
        "mgcv",
        "nlme",
        "nnet",
        "rpart",
        "spatial",
        "survival",
        "png",
        "jpeg",
        "jsonlite",
    }
)
# Binary packages for Ubuntu 22.04 (jammy), the image's release, from Posit Package Manager's public CRAN mirror at a
# dated snapshot that matches the image's R: 2023-04-20, the eve of R 4.3.0, when CRAN's packages were built and
# checked against R 4.1 (then oldrel-1; Matrix was 1.5-4, "Depends: R (>= 3.5.0)"). Its "latest" serves what current
# CRAN holds, which follows current R: Matrix 1.7 needs R >= 4.4, and glmnet and lme4 need Matrix. A package that
# snapshot has no binary for builds from source with the image's toolchain (r-base-dev).
R_BINARY_REPOSITORY = "https://packagemanager.posit.co/cran/__linux__/jammy/2023-04-20"
SITE_LIBRARY = "/usr/local/lib/R/site-library"
# R, after session.R's package_problems(): every declared package loads, at the version asked for, as the R session
# will check before any file; else the build stops naming each one that does not
R_VERIFY_CALL = r"""
problems <- package_problems(character(), jsonlite::fromJSON(commandArgs(TRUE)[[1L]], simplifyVector = FALSE))
if (length(problems)) stop("declared R packages that do not load in the image: ", paste(problems, collapse = "; "))
"""


def image_dockerfile(
    packages: list[dict[str, Any]], *, repository: str = R_BINARY_REPOSITORY, library: str = SITE_LIBRARY
) -> str:
    """The run's Dockerfile: the shipped one, then (for declared packages) their install and check.

    :param packages: the declared packages (``RPackage.to_dict()``), in declaration order.
    :param repository: the CRAN-like repository they come from (tests give a local one).
    :param library: the R library they go into.
    """
    from azureml_parallel_r.r_install import R_INSTALL

    base = COMPUTE_DOCKERFILE.read_text(encoding="utf-8")
    if not packages:
        return base
    declared = json.dumps(packages, sort_keys=True, separators=(",", ":"))
    install = ["Rscript", "--vanilla", "-e", R_INSTALL, declared, repository, library]
    verify = ["Rscript", "--vanilla", "-e", session_r_function("package_problems") + R_VERIFY_CALL, declared]
    names = ", ".join(package["name"] for package in packages)
    return (
        base.rstrip("\n")
        + "\n\n# The R packages the run's R script declares (azureml-parallel-r: renv.lock, DESCRIPTION, r_packages):\n"
        + f"# {names}. Binaries for Ubuntu 22.04 and R {IMAGE_R_VERSION} from Posit Package Manager (else built from "
        + "source); every one checked.\n"
        + f"RUN {json.dumps(install)}\n"
        + f"RUN {json.dumps(verify)}\n"
    )


def image_identity(dockerfile: str) -> str:
    """A short hash of the image's Dockerfile: the same declaration, the same image.

    :param dockerfile: the run's Dockerfile.
    """
    return hashlib.sha256(dockerfile.encode("utf-8")).hexdigest()[:12]


def build_context(dockerfile: str) -> str:
    """A new build context folder holding the run's Dockerfile (v2's ``BuildContext``); the caller removes it.

    :param dockerfile: the run's Dockerfile.
    """
    folder = tempfile.mkdtemp(prefix="azureml-parallel-r-image-")
    with open(os.path.join(folder, "Dockerfile"), "w", encoding="utf-8") as handle:
        handle.write(dockerfile)
    return folder
