"""Notebooks that ship with the package and run as apps (``ipyimagegen studio`` opens ``studio.ipynb``)."""
