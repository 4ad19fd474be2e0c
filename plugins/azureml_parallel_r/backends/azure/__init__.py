"""The two Azure ML engines and what they share: SDK v1 (:mod:`.v1`), SDK v2 (:mod:`.v2`, its pipeline job built in
:mod:`.v2_job`), the datastore's blobs (:mod:`.storage`), what a run records and how its results are read
(:mod:`.runs`), retries (:mod:`.errors`), and where runs go in the workspace (:mod:`.workspace`)."""
