"""Lesson 04, ``notebooks/04_gamma_beta.ipynb``: γ and β: giving the layer its freedom back."""
