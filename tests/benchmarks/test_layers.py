"""benchmarks/layers.py: what a node holding one image pulls for a second one (pure part)."""

from benchmarks.layers import Layer, second_image


def test_a_second_image_moves_only_the_layers_the_first_lacks():
    base, jupyter = Layer("sha256:b", 130, "base"), Layer("sha256:j", 300, "RUN uv pip install jupyterlab==4")
    first = [base, jupyter, Layer("sha256:d1", 330, "deps"), Layer("sha256:r1", 1, "COPY repo/")]
    second = [base, jupyter, Layer("sha256:d2", 180, "deps"), Layer("sha256:r2", 2, "COPY repo/")]
    result = second_image(first, second)
    assert (result.moved, result.total, result.shared_layers, result.layers) == (182, 612, 2, 4)
    assert round(result.moved_share, 3) == 0.297
    assert second_image(first, first).moved == 0
    assert second_image([], second).moved == second_image([], second).total == 612
