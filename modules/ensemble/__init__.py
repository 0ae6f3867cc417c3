"""Ensembles of parallel models (the paper's "parallel number" 2 to 7): one command, one checkpoint."""
from inqnet.modules.ensemble.data import EnsembleDataModule
from inqnet.modules.ensemble.layout import EnsembleLayout, member_seed
from inqnet.modules.ensemble.module import EnsembleModule
from inqnet.modules.ensemble.strategy import EnsembleDDPStrategy, EnsembleSync

__all__ = ["EnsembleDDPStrategy", "EnsembleDataModule", "EnsembleLayout", "EnsembleModule", "EnsembleSync",
           "member_seed"]
