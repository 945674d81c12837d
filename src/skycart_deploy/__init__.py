"""Deploy tooling the pipelines call: one importable function per operation, one CLI verb each."""
