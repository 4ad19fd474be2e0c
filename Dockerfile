# Airflow 3.3 (official image, Python 3.11) with R, the R packages and this project's locked Python
# dependencies; docker-compose.yaml runs the whole stack on it (`docker compose up --build -d`) and
# mounts dags/, plugins/, include/ and the local datastore over the copies baked in here.
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
# requirements/airflow-image.txt is `uv export --frozen --no-dev` of uv.lock (tests keep them in sync).
COPY --chown=airflow:root requirements/airflow-image.txt /opt/azureml-parallel-r/requirements.txt
RUN pip install --no-cache-dir -r /opt/azureml-parallel-r/requirements.txt
# The code is mounted at run time; baking it in as well lets the image run on its own.
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/airflow/include/
