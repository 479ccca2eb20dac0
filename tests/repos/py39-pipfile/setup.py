from setuptools import setup

setup(name="should-not-install", version="0.1", packages=["should_not_install"])
