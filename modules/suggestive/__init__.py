"""Suggestive Annotation (Yang et al. 2017) with quantized suggestive FCNs: the selection math and
the pool's items / suggestions file. The driver that trains the FCNs is `inqnet.cli.annotate.rounds`."""
from inqnet.modules.suggestive.items import (Suggestions, SuggestionRound, format_id, parse_id, pool_ids, read_suggestions,
                                      resolve_ids)
from inqnet.modules.suggestive.selection import (bootstrap_sample, cosine_matrix, coverage, greedy_max_cover,
                                          mean_pairwise_distance, select_representative, top_uncertain, uncertainty)

__all__ = ["SuggestionRound", "Suggestions", "bootstrap_sample", "cosine_matrix", "coverage", "format_id",
           "greedy_max_cover", "mean_pairwise_distance", "parse_id", "pool_ids", "read_suggestions", "resolve_ids",
           "select_representative", "top_uncertain", "uncertainty"]
