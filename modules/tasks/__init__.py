"""The LightningModules of the three task families, their metrics and CTC decoding."""
