"""Lesson 01, ``notebooks/01_feature_scaling.ipynb``: Feature scaling: why the shape of the loss surface matters."""
