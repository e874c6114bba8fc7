"""Lesson 05, ``notebooks/05_test_time.ipynb``: Batch normalization at test time."""
