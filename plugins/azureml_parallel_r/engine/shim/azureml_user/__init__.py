"""Stand-in for the ``azureml_user`` package of the Azure ML ParallelRunStep runtime (local engine only)."""
