"""Pydantic models at every boundary: the TOML file, workflow and activity inputs and outputs."""
