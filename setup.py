"""The package list pyproject.toml cannot write: gpuad's packages as found, plus models/ installed
as gpuad_models (a top-level `models` would clash with other projects' packages of that name)."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["gpuad", "gpuad.*"])
      + ["gpuad_models"] + [f"gpuad_models.{p}" for p in find_packages("models")],
      package_dir={"gpuad_models": "models"})
