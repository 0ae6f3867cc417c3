"""Plain `nn.Module` networks; registered for recipes by the task modules (see inqnet.modules.registry)."""
