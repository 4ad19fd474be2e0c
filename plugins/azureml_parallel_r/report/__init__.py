"""The run report: a page inside the Airflow UI for each DAG run, with what its pipeline run did and a button that
reruns only the files that failed (:mod:`~azureml_parallel_r.report.app`)."""
