"""Lesson 03, ``notebooks/03_forward_backward.ipynb``: Forward and backward: the batch is one network."""
