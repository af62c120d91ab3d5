"""Triton Python-backend models. Import only inside Triton (they need
``triton_python_backend_utils``); every decision they make comes from the pure modules."""
