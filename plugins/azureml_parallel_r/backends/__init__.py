"""Engines behind one interface: the local ParallelRunStep engine and Azure ML (see :mod:`.base`)."""
