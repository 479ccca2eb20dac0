"""dsbuild.builder: Binder repositories to JupyterLab images."""
