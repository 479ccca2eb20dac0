"""A tiny package installed (editable) from the repository itself."""


def mean(values):
    values = list(values)
    return sum(values) / len(values)
