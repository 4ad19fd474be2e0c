"""azureml-parallel-r: run an R script over many files in parallel on Azure ML, orchestrated by Airflow.

The Airflow side (hook, operators, sensor, trigger, backends) and the local ParallelRunStep engine live
here; the code shipped to the compute lives in ``include/``. Importing this package is cheap: submodules
are imported where they are used.
"""

__version__ = "0.1.0"
