"""Lesson 02, ``notebooks/02_internal_covariate_shift.ipynb``: Hidden layers are features too: internal covariate shift and its critique."""
