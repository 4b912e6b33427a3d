"""The generated Triton client's HTTP requests, without a server: the body it writes for a set of input tensors
is the one tritonclient's infer writes, byte for byte, for every kind of tensor a model takes."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from triton_harness import PRESETS, generate, load_client


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    repo = tmp_path_factory.mktemp("client") / "driver_ranking"
    generate(PRESETS / "reference.yaml", repo, ("serving",))
    return load_client(repo, "generated_http_client")


TENSORS = {
    "features": {
        "trips_today": np.array([[5], [7]], dtype=np.int64),
        "rating": np.array([[4.5], [3.25]], dtype=np.float32),
        "acceptance_rate": np.array([[0.5], [0.75]], dtype=np.float32),
    },
    "strings": {
        "text": np.array([["a", "héllo"], ["", "z"]], dtype=np.object_),
        "raw": np.array([b"ab", b"c\x00"], dtype=np.object_),
        "fixed": np.array([b"xy", b"z"], dtype=np.bytes_),
    },
    "mixed": {
        "flag": np.array([True, False, True]),
        "half": np.arange(6, dtype=np.float16).reshape(3, 2)[:, ::-1],  # not contiguous
        "small": np.array([[1, -2]], dtype=np.int8),
        "wide": np.array([2**40], dtype=np.uint64),
        "double": np.array([[1.5]], dtype=np.float64),
    },
    "empty": {"none": np.zeros((0, 3), dtype=np.int32), "no_text": np.zeros((0,), dtype=np.object_)},
}


@pytest.mark.parametrize("kind", sorted(TENSORS))
def test_the_http_body_is_tritonclients(client: ModuleType, kind: str) -> None:
    import tritonclient.http as triton

    tensors = TENSORS[kind]
    inputs = []
    for name, array in tensors.items():
        item = triton.InferInput(name, list(array.shape), triton.np_to_triton_dtype(array.dtype))
        item.set_data_from_numpy(array)
        inputs.append(item)
    outputs = [triton.InferRequestedOutput(name) for name in client.OUTPUTS]
    expected = triton.InferenceServerClient.generate_request_body(inputs, outputs=outputs)
    requests = client.HttpRequests(triton.InferenceServerClient("127.0.0.1:9"), client.MODEL, client.OUTPUTS)
    assert requests.body(tensors) == expected
    assert requests.body(tensors) == expected  # the data types it has looked up once


def test_a_tensor_triton_has_no_type_of_is_tritonclients_error(client: ModuleType) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    requests = client.HttpRequests(triton.InferenceServerClient("127.0.0.1:9"), client.MODEL, client.OUTPUTS)
    with pytest.raises(InferenceServerException, match="complex128"):
        requests.body({"z": np.array([1 + 2j])})
