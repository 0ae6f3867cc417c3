"""LightningDataModules; each is registered for recipes with `modules.registry.register_data`."""
