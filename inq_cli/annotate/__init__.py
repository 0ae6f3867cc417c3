"""`inq annotate`: suggestive-annotation rounds and the suggestive FCNs they train."""
