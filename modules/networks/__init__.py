"""Plain `nn.Module` networks; registered for recipes by the task modules (see modules.registry)."""
