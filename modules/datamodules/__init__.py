"""LightningDataModules; each is registered for recipes with `inqnet.modules.registry.register_data`."""
