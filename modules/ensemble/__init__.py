"""Ensembles of parallel models (the paper's "parallel number" 2 to 7): one command, one checkpoint."""
from modules.ensemble.data import EnsembleDataModule
from modules.ensemble.layout import EnsembleLayout, member_seed
from modules.ensemble.module import EnsembleModule
from modules.ensemble.strategy import EnsembleDDPStrategy, EnsembleSync

__all__ = ["EnsembleDDPStrategy", "EnsembleDataModule", "EnsembleLayout", "EnsembleModule", "EnsembleSync",
           "member_seed"]
