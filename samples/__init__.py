"""The repository's sample data: the deterministic generator of the workbooks in raw/ and of their ×10 / ×100
versions for the benchmarks. Not part of the installed package: the pipeline never imports it."""
