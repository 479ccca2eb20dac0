"""conda package names -> PyPI names (or Debian packages), for environment.yml.

Maintained by hand for the common scientific stack. Names not listed here and not
known to be conda-only are assumed to have the same name on PyPI (the build log says
which); names known to be conda-only (R, C libraries, compilers) stop the build."""

from __future__ import annotations

import re

# conda name -> PyPI name, where they differ (or where the same name is common enough to list).
PYPI_NAMES = {
    "numpy": "numpy", "scipy": "scipy", "pandas": "pandas", "matplotlib": "matplotlib",
    "matplotlib-base": "matplotlib", "scikit-learn": "scikit-learn", "scikit-image": "scikit-image",
    "seaborn": "seaborn", "seaborn-base": "seaborn", "xarray": "xarray", "dask": "dask[complete]",
    "dask-core": "dask", "distributed": "distributed", "bokeh": "bokeh", "plotly": "plotly",
    "altair": "altair", "holoviews": "holoviews", "hvplot": "hvplot", "panel": "panel",
    "statsmodels": "statsmodels", "sympy": "sympy", "networkx": "networkx", "numba": "numba",
    "pytables": "tables", "h5py": "h5py", "netcdf4": "netCDF4", "zarr": "zarr", "pyarrow": "pyarrow",
    "arrow-cpp": "pyarrow", "polars": "polars", "pillow": "pillow", "imageio": "imageio",
    "pytorch": "torch", "pytorch-cpu": "torch", "torchvision": "torchvision", "tensorflow": "tensorflow",
    "tensorflow-cpu": "tensorflow-cpu", "keras": "keras", "jax": "jax", "jaxlib": "jaxlib",
    "py-opencv": "opencv-python-headless", "opencv": "opencv-python-headless", "python-graphviz": "graphviz",
    "pydot": "pydot", "ipywidgets": "ipywidgets", "ipykernel": "ipykernel", "ipython": "ipython",
    "jupyterlab": "jupyterlab", "notebook": "notebook", "nbconvert": "nbconvert", "jupytext": "jupytext",
    "voila": "voila", "ipyleaflet": "ipyleaflet", "folium": "folium", "geopandas": "geopandas",
    "shapely": "shapely", "pyproj": "pyproj", "fiona": "fiona", "rasterio": "rasterio", "cartopy": "cartopy",
    "requests": "requests", "pyyaml": "PyYAML", "beautifulsoup4": "beautifulsoup4", "lxml": "lxml",
    "tqdm": "tqdm", "click": "click", "nltk": "nltk", "spacy": "spacy", "gensim": "gensim",
    "xgboost": "xgboost", "py-xgboost": "xgboost", "lightgbm": "lightgbm", "catboost": "catboost",
    "pymc": "pymc", "pymc3": "pymc3", "arviz": "arviz", "emcee": "emcee", "astropy": "astropy",
    "biopython": "biopython", "sqlalchemy": "SQLAlchemy", "psycopg2": "psycopg2-binary", "pytest": "pytest",
    "pip": None, "python": None,  # handled apart
}
# conda packages that are Debian packages here (installed with apt).
DEBIAN_PACKAGES = {
    "nodejs": ("nodejs", "npm"), "git": ("git",), "graphviz": ("graphviz",), "ffmpeg": ("ffmpeg",),
    "make": ("make",), "unzip": ("unzip",), "wget": ("wget",), "curl": ("curl",), "pandoc": ("pandoc",),
}
# conda packages with no PyPI equivalent: R, system libraries, compilers, CUDA, BLAS builds.
_CONDA_ONLY = re.compile(
    r"^(r|r-.*|rstudio|julia|gdal|libgdal.*|proj|geos|hdf5|libnetcdf|netcdf-c|cudatoolkit|cuda-.*|cudnn|nccl|"
    r"mkl|mkl-.*|openblas|libblas|blas|libcblas|liblapack|compilers|c-compiler|cxx-compiler|fortran-compiler|"
    r"gcc.*|gxx.*|gfortran.*|clang.*|libgcc.*|libstdcxx.*|openjdk|cmake|ninja|nomkl|conda|mamba|libiconv|"
    r"libxml2|zlib|openssl|libffi|xz|tk|readline|sqlite|ncurses|libcurl|icu|cairo|pango|poppler|tesseract|"
    r"imagemagick|texlive-core|nb_conda_kernels|nb_conda)$"
)


def conda_only(name: str) -> bool:
    return bool(_CONDA_ONLY.match(name))
