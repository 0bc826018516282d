"""The job runner of the local service: executes batch prediction jobs (issue: the local service
runs batch prediction jobs). ``adapters`` read input and write output; the runner moves chunks
between them through a model."""
