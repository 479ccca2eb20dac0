import pytest

from dsbuild.spawner.quantities import Cpu, Memory


@pytest.mark.parametrize("value, millicores", [
    (2, 2000), (0.5, 500), ("2", 2000), ("1.5", 1500), ("500m", 500), ("0", 0), (" 250m ", 250),
])
def test_cpu_parses_cores_and_millicores(value, millicores):
    assert Cpu.parse(value) == Cpu(millicores)


@pytest.mark.parametrize("value", [-1, "-1", "1.0005", "abc", "2 cores", True, None, float("nan"),
                                   float("inf"), "1e3", "5000", [1]])
def test_cpu_refuses_negative_absurd_and_malformed(value):
    with pytest.raises(ValueError):
        Cpu.parse(value)


@pytest.mark.parametrize("millicores, text, shown", [
    (2000, "2", "2 CPUs"), (500, "500m", "0.5 CPUs"), (1000, "1", "1 CPU"), (1500, "1500m", "1.5 CPUs"),
])
def test_cpu_writes_kubernetes_notation(millicores, text, shown):
    assert Cpu(millicores).k8s() == text and str(Cpu(millicores)) == shown
    assert Cpu.parse(text) == Cpu(millicores)


@pytest.mark.parametrize("value, size", [
    ("4Gi", 4 * 2**30), ("512Mi", 512 * 2**20), ("1G", 10**9), ("1.5Gi", 3 * 2**29), (1024, 1024), ("1Pi", 2**50),
])
def test_memory_parses_binary_and_decimal_suffixes(value, size):
    assert Memory.parse(value) == Memory(size)


@pytest.mark.parametrize("value", ["-4Gi", "4GB", "4 gi", "0.5", "1.0000000001Ki", "2Pi", "9" * 30, 1.5, True, None])
def test_memory_refuses_negative_absurd_and_malformed(value):
    with pytest.raises(ValueError):
        Memory.parse(value)


@pytest.mark.parametrize("size, text, shown", [
    (4 * 2**30, "4Gi", "4 GiB"), (1536 * 2**20, "1536Mi", "1.5 GiB"), (1500 * 10**6, "1500M", "1.39698 GiB"),
    (123, "123", "123 B"), (0, "0", "0 B"),
])
def test_memory_writes_the_largest_exact_suffix(size, text, shown):
    assert Memory(size).k8s() == text and str(Memory(size)) == shown
    assert Memory.parse(text) == Memory(size)


def test_quantities_order_and_add_exactly():
    assert Cpu.parse("1500m") > Cpu.parse(1) and Cpu.parse(0.5) + Cpu.parse("500m") == Cpu.parse(1)
    assert Memory.parse("1Gi") == Memory.parse("1024Mi") and Memory.parse("1G") < Memory.parse("1Gi")
