"""The code that runs on the compute: the entry script's machinery (``batch``), its settings (``entry_config``,
``entry_settings``), the R session (``r_session`` and its ``r_*`` parts), where outputs go (``output_layout``,
``journal``) and the formats they are written in (``records``).

Standard library only: the engines ship this package, with the package's ``__init__`` and nothing else of it, in the
step's source directory beside ``entry/`` and ``r/`` (:mod:`azureml_parallel_r.shipped_code`), and the Airflow side
imports the same modules by name.
"""
