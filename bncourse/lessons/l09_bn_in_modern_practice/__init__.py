"""Lesson 09, ``notebooks/09_bn_in_modern_practice.ipynb``: Batch norm in modern practice."""
