"""The example DAGs' helpers: the outputs asset they update and are scheduled on (:mod:`.assets`), their deployment
settings from the environment (:mod:`.deployment`), and sample input files (:mod:`.samples`). An installed
distribution carries the example DAGs here too (``r_parallel_batch``, ``r_parallel_batch_results``; in this
repository they are ``dags/``)."""
