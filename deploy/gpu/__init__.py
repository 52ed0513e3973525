"""The GPU Triton model repository: launch.py (also a script), the python-backend model and its engines."""
