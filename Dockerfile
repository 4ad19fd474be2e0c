# Airflow 3.3 (official image, Python 3.11) with R, the R packages and this project installed as a package: its wheel
# (built in the first stage from this checkout) over the locked Python dependencies. docker-compose.yaml builds it
# once and runs the whole stack on it (`docker compose up --build -d`).

# Stage 1: the wheel, built as the install docs build it (pip fetches the build backend, hatchling, for the build)
FROM apache/airflow:3.3.2-python3.11 AS wheel
WORKDIR /tmp/azureml-parallel-r
COPY --chown=airflow:root pyproject.toml README.md LICENSE ./
COPY --chown=airflow:root plugins/ plugins/
COPY --chown=airflow:root include/ include/
COPY --chown=airflow:root dags/ dags/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir dist .

# Stage 2: the image the services run
FROM apache/airflow:3.3.2-python3.11

USER root
# R as scripts/setup.sh installs it, and as the Azure ML compute image has it: R's recommended packages (Matrix, ...)
# and the toolchain that builds packages with compiled code (scripts/setup.sh --r-packages builds them here)
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      r-base-core r-recommended r-base-dev r-cran-png r-cran-jpeg r-cran-jsonlite \
 && rm -rf /var/lib/apt/lists/* \
 && Rscript -e 'for (p in c("png", "jpeg", "jsonlite", "Matrix")) library(p, character.only = TRUE)'

USER airflow
# requirements/airflow-image.txt is `uv export --frozen --no-dev --all-extras` of uv.lock (tests keep them in sync):
# the tested set, both Azure ML SDKs included, in a layer of its own that a change to the code does not rebuild
COPY --chown=airflow:root requirements/airflow-image.txt /opt/azureml-parallel-r/requirements.txt
RUN pip install --no-cache-dir -r /opt/azureml-parallel-r/requirements.txt
# the package itself, as a team installs it (no plugins folder): its provider, plugin, connection type and shipped code
COPY --from=wheel --chown=airflow:root /tmp/azureml-parallel-r/dist/ /opt/azureml-parallel-r/dist/
RUN pip install --no-cache-dir --no-deps /opt/azureml-parallel-r/dist/azureml_parallel_r-*.whl
# the example DAGs (docker-compose.yaml mounts ./dags over them, so DAG edits need no rebuild)
COPY --chown=airflow:root dags/ /opt/airflow/dags/
