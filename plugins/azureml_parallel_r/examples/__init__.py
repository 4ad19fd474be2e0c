"""The example DAGs' helpers: the outputs asset they update and are scheduled on (:mod:`.assets`), their deployment
settings from the environment (:mod:`.deployment`), and sample input files (:mod:`.samples`). An installed
distribution carries the example DAGs here too (``r_parallel_batch``, ``r_parallel_batch_results``; in this
repository they are ``dags/``). The folder is not named ``example_dags`` on purpose: with ``load_examples`` on, Airflow
loads every installed provider's ``example_dags`` folder as a bundle of its own, and a user who copies the DAGs into
their dags folder, as docs/installing.md says, would get each DAG id from two files."""
