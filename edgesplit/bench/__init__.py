"""Sweeps (cuts x precisions x backends x devices x decoders), a resumable results store, partition
planning and the report."""

from edgesplit.bench.rows import SweepRow
from edgesplit.bench.spec import SweepSpec
from edgesplit.bench.spec_file import load_spec, spec_from_dict
from edgesplit.bench.store import ResultsStore, read_results, read_sweep_rows
from edgesplit.bench.sweep import run_sweep

__all__ = ["ResultsStore", "SweepRow", "SweepSpec", "load_spec", "read_results", "read_sweep_rows", "run_sweep",
           "spec_from_dict"]
