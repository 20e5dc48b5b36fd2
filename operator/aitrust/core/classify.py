"""Is this workload AI? A weighted-evidence classifier for shadow-AI discovery.

Each rule that fires contributes a weight in (0, 1): roughly the probability that a workload
showing only that evidence is an AI workload. Weights combine as a noisy OR,
``confidence = 1 - prod(1 - w)``, and a workload is AI when the confidence reaches
``AI_THRESHOLD``. Strong evidence (a vLLM image, a KServe InferenceService, an
``OPENAI_API_KEY``) decides alone; weak evidence (a GPU request, a ``/models`` mount, a
``--model`` flag, port 8000) needs company, since a GPU transcoder or a web app on port 8000
must not be flagged. A rule counts once per workload however many containers show it.

Each rule may also vote for a category (inference, agent, training, notebook, datastore);
the category with the largest summed weight wins, and the object kind breaks a silence.

Works on any object ``build_pod_specs`` understands, Pods included, so the operator can run
it on live pods.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aitrust.core.catalog import AI_PROVIDER_KEYS, HF_TOKENS
from aitrust.core.posture import parse_image
from aitrust.core.workloads import ContainerView, PodTemplateView, build_pod_specs

__all__ = [
    "AI_THRESHOLD",
    "CATEGORIES",
    "Category",
    "Classification",
    "classify_workload",
    "pod_specs_of",
]

Category = Literal["inference", "agent", "training", "notebook", "datastore"]
CATEGORIES: tuple[Category, ...] = ("inference", "agent", "training", "notebook", "datastore")
AI_THRESHOLD = 0.6


class Classification(BaseModel):
    """The verdict; serialised by alias (``isAI``) in scan JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    is_ai: bool = Field(alias="isAI")
    category: Category | None
    confidence: float = Field(description="Noisy-OR of the evidence weights, 0-1")
    evidence: list[str] = Field(description="Strongest first, each with its weight")


# --- rule tables -------------------------------------------------------------------------

_Rule = tuple[str, float, Category | None, str]  # (key, weight, category, description)

# Custom resources whose mere existence is AI: (group suffix, kind) -> rule.
_AI_RESOURCES: Mapping[tuple[str, str], _Rule] = {
    ("serving.kserve.io", "InferenceService"): ("cr", 0.99, "inference", "KServe InferenceService"),
    ("serving.kserve.io", "InferenceGraph"): ("cr", 0.97, "inference", "KServe InferenceGraph"),
    ("serving.kserve.io", "LLMInferenceService"): ("cr", 0.99, "inference", "KServe LLMInferenceService"),
    ("ray.io", "RayCluster"): ("cr", 0.95, "training", "KubeRay RayCluster"),
    ("ray.io", "RayJob"): ("cr", 0.97, "training", "KubeRay RayJob"),
    ("ray.io", "RayService"): ("cr", 0.97, "inference", "KubeRay RayService (Ray Serve)"),
    ("kubeflow.org", "PyTorchJob"): ("cr", 0.98, "training", "Kubeflow PyTorchJob"),
    ("kubeflow.org", "TFJob"): ("cr", 0.98, "training", "Kubeflow TFJob"),
    ("kubeflow.org", "MPIJob"): ("cr", 0.9, "training", "Kubeflow MPIJob"),
    ("kubeflow.org", "XGBoostJob"): ("cr", 0.98, "training", "Kubeflow XGBoostJob"),
    ("kubeflow.org", "PaddleJob"): ("cr", 0.98, "training", "Kubeflow PaddleJob"),
    ("kubeflow.org", "JAXJob"): ("cr", 0.98, "training", "Kubeflow JAXJob"),
    ("kubeflow.org", "Notebook"): ("cr", 0.97, "notebook", "Kubeflow Notebook"),
    ("kubeflow.org", "Experiment"): ("cr", 0.95, "training", "Katib Experiment"),
    ("trainer.kubeflow.org", "TrainJob"): ("cr", 0.98, "training", "Kubeflow TrainJob"),
    ("machinelearning.seldon.io", "SeldonDeployment"): ("cr", 0.97, "inference", "SeldonDeployment"),
    ("mlops.seldon.io", "Model"): ("cr", 0.97, "inference", "Seldon Core 2 Model"),
    ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"): ("lws", 0.3, "inference", "LeaderWorkerSet"),
}

# Labels that AI controllers put on the pods they create.
_AI_LABEL_PREFIXES: tuple[tuple[str, _Rule], ...] = (
    ("serving.kserve.io/", ("ctl-label", 0.95, "inference", "pod of a KServe InferenceService")),
    ("ray.io/", ("ctl-label", 0.9, "training", "pod of a KubeRay cluster")),
    ("training.kubeflow.org/", ("ctl-label", 0.95, "training", "pod of a Kubeflow training job")),
    ("trainer.kubeflow.org/", ("ctl-label", 0.95, "training", "pod of a Kubeflow TrainJob")),
    ("seldon-deployment-id", ("ctl-label", 0.95, "inference", "pod of a SeldonDeployment")),
    ("notebook-name", ("ctl-label", 0.85, "notebook", "pod of a Kubeflow Notebook")),
)
_LABEL_TOKENS = re.compile(
    r"(?<![a-z0-9])(vllm|ollama|llm|llms|tgi|triton|kserve|inference|model-server|langchain|llamaindex"
    r"|rag|embeddings?|chatbot|genai|gpt|llama|mistral|qwen|gemma|rerank(er)?)(?![a-z0-9])"
)

# Images: first match wins, so more specific patterns come first.
_IMAGE_TABLE: tuple[tuple[str, _Rule], ...] = (
    (
        r"jupyter.*(tensorflow|pytorch|datascience|scipy|spark|cuda|gpu)|"
        r"(tensorflow|pytorch|scipy).*jupyter|kubeflownotebookswg/jupyter",
        ("image", 0.95, "notebook", "Jupyter ML notebook stack"),
    ),
    (r"(?<![a-z0-9])(jupyter|jupyterlab|jupyterhub)(?![a-z0-9])", ("image", 0.8, "notebook", "Jupyter")),
    (r"(?<![a-z0-9])vllm(?![a-z0-9])", ("image", 0.97, "inference", "vLLM inference server")),
    (r"text-generation-inference", ("image", 0.97, "inference", "Hugging Face TGI")),
    (r"text-embeddings-inference", ("image", 0.95, "inference", "Hugging Face TEI")),
    (r"(?<![a-z0-9])ollama(?![a-z0-9])", ("image", 0.97, "inference", "Ollama")),
    (r"tritonserver|triton-inference-server", ("image", 0.97, "inference", "NVIDIA Triton")),
    (r"^nvcr\.io/nim/", ("image", 0.97, "inference", "NVIDIA NIM")),
    (r"tensorrt-?llm|trtllm", ("image", 0.95, "inference", "TensorRT-LLM")),
    (r"(?<![a-z0-9])kserve/", ("image", 0.95, "inference", "KServe runtime")),
    (r"(?<![a-z0-9])mlserver(?![a-z0-9])", ("image", 0.95, "inference", "Seldon MLServer")),
    (r"(?<![a-z0-9])seldonio/", ("image", 0.9, "inference", "Seldon")),
    (r"torchserve", ("image", 0.95, "inference", "TorchServe")),
    (r"tensorflow/serving|tensorflow-serving", ("image", 0.95, "inference", "TensorFlow Serving")),
    (r"openvino/model_server", ("image", 0.95, "inference", "OpenVINO Model Server")),
    (
        r"llama\.cpp|llama-cpp|llama-server|ggml-org/|ggerganov/",
        ("image", 0.95, "inference", "llama.cpp"),
    ),
    (r"(?<![a-z0-9])localai(?![a-z0-9])", ("image", 0.95, "inference", "LocalAI")),
    (r"(?<![a-z0-9])sglang(?![a-z0-9])", ("image", 0.97, "inference", "SGLang")),
    (r"(?<![a-z0-9])lmdeploy(?![a-z0-9])", ("image", 0.95, "inference", "LMDeploy")),
    (r"xinference|michaelf34/infinity", ("image", 0.95, "inference", "embedding/LLM server")),
    (r"(?<![a-z0-9])(bentoml|openllm|ray-llm)(?![a-z0-9])", ("image", 0.85, "inference", "LLM server")),
    (r"(?<![a-z0-9])litellm(?![a-z0-9])", ("image", 0.95, "inference", "LiteLLM gateway")),
    (
        r"comfyui|stable-diffusion|automatic1111|invokeai|(?<![a-z0-9])diffusers(?![a-z0-9])",
        ("image", 0.9, "inference", "image-generation server"),
    ),
    (r"whisper", ("image", 0.85, "inference", "Whisper speech model")),
    (r"onnxruntime", ("image", 0.7, "inference", "ONNX Runtime")),
    (
        r"open-webui|flowise|langflow|langgenius/dify|anythingllm|librechat|lobe-chat|chatbot-ui",
        ("image", 0.93, "agent", "LLM application platform"),
    ),
    (
        r"(?<![a-z0-9])(langchain|langgraph|langserve|llama[-_]?index|crewai|autogen|haystack"
        r"|semantic-kernel)(?![a-z0-9])",
        ("image", 0.88, "agent", "LLM agent framework"),
    ),
    (r"^docker\.io/mcp/|(?<![a-z0-9])mcp-server", ("image", 0.8, "agent", "MCP server")),
    (r"qdrant", ("image", 0.95, "datastore", "Qdrant vector database")),
    (r"chromadb|(?<![a-z0-9])chroma(?![a-z0-9])", ("image", 0.95, "datastore", "Chroma vector database")),
    (r"weaviate", ("image", 0.95, "datastore", "Weaviate vector database")),
    (r"milvus|zilliz", ("image", 0.95, "datastore", "Milvus vector database")),
    (r"pgvector", ("image", 0.85, "datastore", "Postgres with pgvector")),
    (r"marqo|lancedb|vdaas/vald|pinecone", ("image", 0.9, "datastore", "vector database")),
    (r"(?<![a-z0-9])rayproject/|(?<![a-z0-9])anyscale/", ("image", 0.9, "training", "Ray")),
    (
        r"^nvcr\.io/nvidia/(pytorch|tensorflow|nemo|jax|paxml)|(?<![a-z0-9])nemo(?![a-z0-9])",
        ("image", 0.93, "training", "NVIDIA deep-learning framework"),
    ),
    (
        r"(?<![a-z0-9])(pytorch|tensorflow|deepspeed|horovod|mosaicml|axolotl|unsloth|torchtune"
        r"|transformers|huggingface|pytorch-?lightning|keras|paddlepaddle|mxnet)(?![a-z0-9])",
        ("image", 0.9, "training", "deep-learning framework"),
    ),
    (
        r"(?<![a-z0-9])(mlflow|wandb|kubeflow|katib|ml-pipeline)(?![a-z0-9])",
        ("image", 0.8, "training", "ML platform"),
    ),
    (r"(?<![a-z0-9])torch(?![a-z0-9])", ("image", 0.7, "training", "PyTorch")),
    (r"(?<![a-z0-9])(cuda|cudnn)(?![a-z0-9])", ("cuda", 0.15, None, "CUDA base image")),
)
_IMAGE_RULES = tuple((re.compile(pattern), rule) for pattern, rule in _IMAGE_TABLE)

_COMMAND_TABLE: tuple[tuple[str, _Rule], ...] = (
    (r"vllm serve|vllm\.entrypoints", ("cmd-server", 0.97, "inference", "runs vLLM")),
    (r"text-generation-launcher", ("cmd-server", 0.97, "inference", "runs TGI")),
    (r"sglang\.launch_server", ("cmd-server", 0.97, "inference", "runs SGLang")),
    (r"ollama (serve|run|pull)", ("cmd-server", 0.95, "inference", "runs Ollama")),
    (r"(?<![a-z0-9/])tritonserver(?![a-z0-9])", ("cmd-server", 0.95, "inference", "runs Triton")),
    (
        r"tensorflow_model_server|torchserve --start",
        ("cmd-server", 0.95, "inference", "runs a model server"),
    ),
    (r"llama-server|llama_cpp\.server", ("cmd-server", 0.95, "inference", "runs llama.cpp")),
    (
        r"lmdeploy serve|mlflow models serve|bentoml serve",
        ("cmd-server", 0.9, "inference", "serves a model"),
    ),
    (
        r"(?<![a-z0-9])(torchrun|horovodrun|llamafactory-cli)(?![a-z0-9])|torch\.distributed\.(run|launch)"
        r"|accelerate launch|(?<![a-z0-9])deepspeed |python3? -m axolotl|tune run",
        ("cmd-train", 0.93, "training", "launches distributed training"),
    ),
    (
        r"jupyter[ -](lab|notebook|server)|jupyterhub-singleuser|start-notebook\.(sh|py)"
        r"|start-singleuser\.(sh|py)",
        ("cmd-notebook", 0.93, "notebook", "runs Jupyter"),
    ),
    (r"(?<![a-z0-9])ray start(?![a-z0-9])", ("cmd-ray", 0.9, "training", "starts a Ray node")),
    (
        r"huggingface-cli download|(?<![a-z0-9])hf download|snapshot_download",
        ("cmd-download", 0.8, "inference", "downloads model weights"),
    ),
    (
        r"pip3? install[^;&|]*(?<![a-z0-9-])(torch|transformers|vllm|langchain[a-z-]*|llama-index|openai"
        r"|anthropic|sentence-transformers|accelerate)(?![a-z0-9-])",
        ("cmd-pip", 0.8, None, "installs AI libraries"),
    ),
    (
        r"(?<![a-z0-9])(train|finetune|fine_tune|fine-tune|sft|pretrain)\.py",
        ("cmd-trainpy", 0.5, "training", "runs a training script"),
    ),
)
_COMMAND_RULES = tuple((re.compile(pattern), rule) for pattern, rule in _COMMAND_TABLE)

_MODEL_FLAGS = frozenset(
    {
        "--model",
        "--model-id",
        "--model_id",
        "--model-path",
        "--model_path",
        "--model-name",
        "--model_name",
        "--model_name_or_path",
        "--model-dir",
        "--model_dir",
        "--served-model-name",
        "--model-repository",
        "--model-store",
        "--models",
        "--tensor-parallel-size",
        "--max-model-len",
        "--gpu-memory-utilization",
        "--quantize",
        "--quantization",
        "--num-shard",
        "--trust-remote-code",
        "--trust_remote_code",
        "--max-input-length",
        "--max-total-tokens",
        "--n-gpu-layers",
        "-ngl",
    }
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_MODEL_FILE = re.compile(r"\.(safetensors|gguf|ggml)(?![a-z0-9])", re.IGNORECASE)
_WEAK_MODEL_FILE = re.compile(r"\.(onnx|pth|ckpt|tflite|mlmodel)(?![a-z0-9])", re.IGNORECASE)
_HUB_URI = re.compile(r"(?<![a-z0-9])(hf://|huggingface\.co/)", re.IGNORECASE)

_PROVIDER_KEYS = AI_PROVIDER_KEYS
_HF_KEYS = HF_TOKENS
_ML_CACHE_ENV = frozenset(
    {
        "HF_HOME",
        "HF_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "HF_HUB_ENABLE_HF_TRANSFER",
        "HF_DATASETS_CACHE",
        "TRANSFORMERS_CACHE",
        "TRANSFORMERS_OFFLINE",
        "SENTENCE_TRANSFORMERS_HOME",
        "TORCH_HOME",
        "HF_MODEL_ID",
    }
)
_MODEL_ENV = frozenset({"MODEL_ID", "MODEL_NAME", "MODEL_PATH", "MODEL_DIR", "MODEL_REPO", "MODEL_URI"})
_TRAINING_ENV = frozenset(
    {
        "WANDB_API_KEY",
        "WANDB_PROJECT",
        "MLFLOW_TRACKING_URI",
        "PYTORCH_CUDA_ALLOC_CONF",
        "TORCH_DISTRIBUTED_DEBUG",
    }
)
_NOTEBOOK_ENV = frozenset(
    {"JUPYTER_TOKEN", "JUPYTER_ENABLE_LAB", "JUPYTERHUB_API_TOKEN", "NB_USER", "NB_UID"}
)
_VECTOR_CLIENT_ENV = re.compile(r"^(QDRANT|PINECONE|WEAVIATE|CHROMA|MILVUS|PGVECTOR|VECTOR_?(DB|STORE))_")
_AGENT_ENV = re.compile(
    r"^(LANGCHAIN|LANGSMITH|LANGFUSE|LANGGRAPH|LLAMA_?INDEX|LLM|OPENAI|AZURE_OPENAI|ANTHROPIC|OLLAMA"
    r"|EMBEDDINGS?|BEDROCK|VERTEX_?AI|GEMINI|COHERE|MISTRAL|GROQ)_"
)
_SERVER_ENV = re.compile(r"^(VLLM|TGI|SGLANG|TRITON|NIM)_")
_OLLAMA_SERVER_ENV = frozenset(
    {"OLLAMA_MODELS", "OLLAMA_KEEP_ALIVE", "OLLAMA_NUM_PARALLEL", "OLLAMA_MAX_LOADED_MODELS"}
)

_AI_HOSTS = re.compile(
    r"(?<![a-z0-9-])(api\.openai\.com|[a-z0-9-]+\.openai\.azure\.com|api\.anthropic\.com"
    r"|bedrock(-agent)?-runtime[.a-z0-9-]*\.amazonaws\.com|bedrock-runtime|[a-z0-9-]*aiplatform\.googleapis\.com"
    r"|generativelanguage\.googleapis\.com|api\.cohere\.(ai|com)|api\.mistral\.ai|api\.groq\.com"
    r"|api\.together\.(xyz|ai)|api\.deepseek\.com|api\.x\.ai|openrouter\.ai|api\.perplexity\.ai"
    r"|api\.fireworks\.ai|api-inference\.huggingface\.co|router\.huggingface\.co"
    r"|[a-z0-9.-]+\.endpoints\.huggingface\.cloud|integrate\.api\.nvidia\.com|api\.replicate\.com"
    r"|api\.voyageai\.com|[a-z0-9-]+\.services\.ai\.azure\.com)",
    re.IGNORECASE,
)
_LLM_API_PATH = re.compile(r"/v1/(chat/completions|completions|embeddings|messages)(?![a-z])|:11434(?![0-9])")
_AI_SERVICE_URL = re.compile(
    r"^(https?|grpc)://[^/\s]*(?<![a-z0-9])(vllm|ollama|tgi|triton|kserve|llm|qdrant|weaviate|milvus|chroma"
    r"|embeddings?|litellm|inference)(?![a-z0-9])",
    re.IGNORECASE,
)
_MODEL_NAME_VALUE = re.compile(
    r"^(gpt-(3\.5|4|4o|4\.1|5)[\w.-]*|(anthropic\.)?claude-[\w.:-]+|gemini-[0-9][\w.-]*"
    r"|(meta\.)?llama-?[23][\w.:-]*|mistral-(large|small|medium)[\w.-]*|text-embedding-[\w-]+"
    r"|amazon\.(titan|nova)-[\w.:-]+|cohere\.(command|embed)[\w.:-]*)$",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(r"^(sk-ant-[\w-]{16,}|sk-proj-[\w-]{16,}|sk-[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,})$")
_AI_SECRET_NAME = re.compile(
    r"(?<![a-z0-9])(openai|anthropic|claude|llm|hf-token|huggingface|hugging-face|gemini|cohere|mistral)"
    r"(?![a-z0-9])"
)

_ACCELERATORS = re.compile(r"^(aws\.amazon\.com/neuron\w*|habana\.ai/gaudi|google\.com/tpu)$")
_GPUS = re.compile(r"^(nvidia\.com/(gpu|mig-.+)|amd\.com/gpu|gpu\.intel\.com/.+)$")
_GPU_NODE_KEYS = re.compile(
    r"nvidia\.com/gpu|cloud\.google\.com/gke-accelerator|karpenter\.k8s\.aws/instance-gpu"
    r"|node\.kubernetes\.io/instance-type.*(p[345]|g[456])|accelerator"
)

_PORTS: Mapping[int, _Rule] = {
    11434: ("port", 0.7, "inference", "Ollama API port 11434"),
    6333: ("port", 0.55, "datastore", "Qdrant port 6333"),
    6334: ("port", 0.55, "datastore", "Qdrant gRPC port 6334"),
    19530: ("port", 0.55, "datastore", "Milvus port 19530"),
    8265: ("port", 0.5, "training", "Ray dashboard port 8265"),
    8888: ("port", 0.35, "notebook", "Jupyter port 8888"),
    7860: ("port", 0.35, "inference", "Gradio port 7860"),
}
_MODEL_PORTS = frozenset({8000, 8080})

_MODEL_MOUNT = re.compile(
    r"^/(mnt/|data/|opt/|var/|srv/|workspace/)?(models?|weights|model[-_]store|model[-_]repository"
    r"|model[-_]cache|checkpoints?)(/|$)"
)
_HF_MOUNT = re.compile(
    r"(^|/)(\.cache/huggingface|huggingface|\.ollama|\.cache/torch)(/|$)|^/mnt/models(/|$)"
)
_JOVYAN = re.compile(r"^/home/jovyan(/|$)")
_MODEL_VOLUME_NAME = re.compile(
    r"(?<![a-z0-9])(models?|weights|hf-cache|huggingface|llm|ollama|model-cache|checkpoints?)(?![a-z0-9])"
)
_PROBE_PATHS: tuple[tuple[re.Pattern[str], _Rule], ...] = (
    (re.compile(r"^/v1/models/?$"), ("probe", 0.7, "inference", "probes the OpenAI-compatible /v1/models")),
    (re.compile(r"^/v2/(health|models)"), ("probe", 0.6, "inference", "probes the KServe/Triton v2 API")),
)

_TRAINING_KINDS = frozenset({"Job", "CronJob"})


# --- evidence collection -------------------------------------------------------------------


class _Evidence:
    """Evidence by rule key: each key counts once, at its strongest."""

    __slots__ = ("by_key",)

    def __init__(self) -> None:
        self.by_key: dict[str, tuple[float, Category | None, str]] = {}

    def add(self, rule: _Rule, detail: str) -> None:
        key, weight, category, description = rule
        seen = self.by_key.get(key)
        if seen is None or weight > seen[0]:
            self.by_key[key] = (weight, category, f"{detail}: {description}")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _group(api_version: str) -> str:
    return api_version.partition("/")[0] if "/" in api_version else ""


@lru_cache(maxsize=1024)
def _resource_rule(api_version: str, kind: str) -> _Rule | None:
    group = _group(api_version)
    for (suffix, rule_kind), rule in _AI_RESOURCES.items():
        if kind == rule_kind and (group == suffix or group.endswith("." + suffix)):
            return rule
    return None


@lru_cache(maxsize=4096)
def _image_rule(image: str) -> _Rule | None:
    if not image:
        return None
    ref = parse_image(image.lower())
    name = ref.name
    for pattern, rule in _IMAGE_RULES:
        if pattern.search(name):
            return rule
    return None


_LABEL_TOKEN_RULE: _Rule = ("label-token", 0.35, None, "AI term in a label")


@lru_cache(maxsize=8192)
def _label_rule(key: str, value: str) -> tuple[_Rule, str] | None:
    for prefix, rule in _AI_LABEL_PREFIXES:
        if key.startswith(prefix):
            return rule, f"label {key}"
    if _LABEL_TOKENS.search(value.lower()):
        return _LABEL_TOKEN_RULE, f"label {key}={value}"
    return None


def _labels(ev: _Evidence, labels: Mapping[str, str], where: str) -> None:
    for key, value in labels.items():
        found = _label_rule(key, str(value))
        if found is not None:
            ev.add(found[0], f"{where} {found[1]}")


# The rule lookups below are cached: images, commands, env names and values repeat a lot
# across a repository or a cluster, and a scan classifies thousands of workloads.


@lru_cache(maxsize=8192)
def _command_rules(text: str) -> tuple[tuple[_Rule, str], ...]:
    """(rule, detail) of a container's lower-cased command line."""
    found: list[tuple[_Rule, str]] = [
        (rule, "command") for pattern, rule in _COMMAND_RULES if pattern.search(text)
    ]
    words = text.split()
    for i, word in enumerate(words):
        flag, eq, value = word.partition("=")
        if flag in _MODEL_FLAGS:
            if not eq and i + 1 < len(words) and not words[i + 1].startswith("-"):
                value = words[i + 1]
            strong = bool(_HUB_ID.match(value) or _MODEL_FILE.search(value) or value.startswith("/models"))
            found.append((("model-args", 0.7 if strong else 0.55, "inference", "model arguments"), flag))
            break
    return tuple(found)


@lru_cache(maxsize=8192)
def _value_rules(value: str) -> tuple[tuple[_Rule, str], ...]:
    """(rule, detail) of one argument or env value."""
    found: list[tuple[_Rule, str]] = []
    host = _AI_HOSTS.search(value)
    if host:
        return ((("ai-endpoint", 0.88, "agent", "calls a managed AI API"), host.group(0)),)
    stripped = value.strip()
    shown = stripped[:80]
    if _KEY_VALUE.match(stripped):
        found.append((("key-value", 0.8, None, "AI provider key in plaintext"), ""))
    elif _LLM_API_PATH.search(value):
        found.append((("llm-url", 0.75, "agent", "calls an LLM API"), shown))
    elif _MODEL_NAME_VALUE.match(stripped):
        found.append((("llm-name", 0.6, "agent", "names a hosted LLM"), shown))
    elif _AI_SERVICE_URL.match(stripped):
        found.append((("ai-service-url", 0.6, "agent", "calls an AI service"), shown))
    if _MODEL_FILE.search(value):
        found.append((("model-file", 0.8, "inference", "model weights file"), shown))
    elif _WEAK_MODEL_FILE.search(value):
        found.append((("model-file-weak", 0.45, "inference", "model file"), shown))
    if _HUB_URI.search(value):
        found.append((("hub-uri", 0.85, "inference", "model from Hugging Face"), shown))
    return tuple(found)


def _values(ev: _Evidence, values: Iterable[str], where: str) -> None:
    for value in values:
        for rule, detail in _value_rules(value):
            ev.add(rule, f"{where} {detail}" if detail else where)


@lru_cache(maxsize=8192)
def _env_rule(name: str) -> _Rule | None:
    upper = name.upper()
    if upper in _PROVIDER_KEYS:
        return ("provider-key", 0.88, "agent", "AI provider credential")
    if upper in _HF_KEYS:
        return ("hf-key", 0.8, None, "Hugging Face Hub token")
    if upper in _OLLAMA_SERVER_ENV or _SERVER_ENV.match(upper):
        return ("server-env", 0.85, "inference", "model-server setting")
    if _AGENT_ENV.match(upper):
        return ("agent-env", 0.8, "agent", "LLM client setting")
    if upper in _ML_CACHE_ENV:
        return ("ml-env", 0.7, None, "ML framework setting")
    if upper in _TRAINING_ENV or upper.startswith(("NCCL_", "DEEPSPEED_", "ACCELERATE_")):
        return ("train-env", 0.65, "training", "training setting")
    if upper in _NOTEBOOK_ENV:
        return ("nb-env", 0.7, "notebook", "Jupyter setting")
    if _VECTOR_CLIENT_ENV.match(upper):
        return ("vector-client", 0.55, "agent", "vector-database client setting")
    if upper in _MODEL_ENV:
        return ("model-env", 0.45, None, "names a model")
    if upper == "GOOGLE_API_KEY":
        return ("google-key", 0.3, "agent", "Google API key (Gemini?)")
    if upper in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        return ("cuda", 0.15, None, "selects CUDA devices")
    return None


@lru_cache(maxsize=4096)
def _secret_name_is_ai(name: str) -> bool:
    return _AI_SECRET_NAME.search(name.lower()) is not None


@lru_cache(maxsize=4096)
def _mount_rules(path: str) -> tuple[_Rule, ...]:
    found: list[_Rule] = []
    if _HF_MOUNT.search(path):
        found.append(("hf-mount", 0.85, None, "mounts a model/hub cache"))
    elif _JOVYAN.match(path):
        found.append(("jovyan", 0.8, "notebook", "Jupyter home directory"))
    elif _MODEL_MOUNT.match(path):
        found.append(("model-mount", 0.45, None, "mounts a model directory"))
    if _MODEL_FILE.search(path):
        found.append(("model-file", 0.8, "inference", "model weights file"))
    return tuple(found)


_SECRET_RULE: _Rule = ("secret-name", 0.5, "agent", "reads an AI-provider secret")


def _container(ev: _Evidence, c: ContainerView) -> None:
    where = f'container "{c.name}"'
    rule = _image_rule(c.image)
    if rule is not None:
        ev.add(rule, f"image {c.image}")

    if c.command or c.args:
        tokens = (*c.command, *c.args)
        for cmd_rule, detail in _command_rules(" ".join(tokens).lower()):
            ev.add(cmd_rule, f"{where} {detail}")
        _values(ev, tokens, f"{where} args")

    for env in c.env:
        env_rule = _env_rule(env.name)
        if env_rule is not None:
            ev.add(env_rule, f"{where} env {env.name}")
        if env.value:
            _values(ev, (env.value,), f"{where} env {env.name}")
        if env.ref_name and _secret_name_is_ai(env.ref_name):
            ev.add(_SECRET_RULE, f"{where} {env.ref_name}")
    for _, name in c.env_from:
        if _secret_name_is_ai(name):
            ev.add(_SECRET_RULE, f"{where} envFrom {name}")

    for resource in (*c.requests, *c.limits):
        if _ACCELERATORS.match(resource):
            ev.add(("accelerator", 0.9, None, "requests an AI accelerator"), f"{where} {resource}")
        elif _GPUS.match(resource):
            ev.add(("gpu", 0.5, None, "requests a GPU"), f"{where} {resource}")

    if c.ports:
        ports = {p.container_port for p in c.ports}
        for port in ports:
            port_rule = _PORTS.get(port)
            if port_rule is not None:
                ev.add(port_rule, f"{where} port {port}")
        if ports & _MODEL_PORTS and "model-args" in ev.by_key:
            port = min(ports & _MODEL_PORTS)
            ev.add(
                ("model-port", 0.3, "inference", "serves HTTP next to model arguments"),
                f"{where} port {port}",
            )

    for mount in c.volume_mounts:
        for mount_rule in _mount_rules(mount.mount_path):
            ev.add(mount_rule, f"{where} mount {mount.mount_path}")


def _pod(ev: _Evidence, view: PodTemplateView) -> None:
    where = f"{view.component} pod" if view.component else "pod"
    _labels(ev, view.labels, where)
    for uri in view.model_uris:
        ev.add(("storage-uri", 0.9, "inference", "model storageUri"), f"{where} {uri}")
    if view.runtime:
        ev.add(("runtime", 0.9, "inference", "KServe model runtime"), f"{where} runtime {view.runtime}")
    spec = view.spec
    # Same key as a GPU request: a GPU node hint adds nothing to the request itself.
    if spec.get("runtimeClassName") == "nvidia":
        ev.add(("gpu", 0.35, None, "runs on GPU nodes"), f"{where} runtimeClassName nvidia")
    selectors = [str(k) for k in _map(spec.get("nodeSelector"))]
    selectors += [str(_map(t).get("key", "")) for t in _list(spec.get("tolerations"))]
    for key in selectors:
        if _GPU_NODE_KEYS.search(key):
            ev.add(("gpu", 0.35, None, "runs on GPU nodes"), f"{where} schedules on {key}")
            break
    for container in view.containers:
        _container(ev, container)
    for raw in _list(spec.get("containers")):
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            path = _map(_map(_map(raw).get(probe)).get("httpGet")).get("path")
            if isinstance(path, str):
                for pattern, rule in _PROBE_PATHS:
                    if pattern.match(path):
                        ev.add(rule, f"{where} {probe} {path}")
    for volume in view.volumes:
        if volume.claim_name and _MODEL_VOLUME_NAME.search(volume.claim_name.lower()):
            ev.add(("model-mount", 0.45, None, "mounts a model volume"), f"{where} claim {volume.claim_name}")


def _decide(ev: _Evidence, kind: str) -> Classification:
    miss = 1.0
    votes: dict[Category, float] = {}
    for weight, vote, _ in ev.by_key.values():
        miss *= 1.0 - weight
        if vote is not None:
            votes[vote] = votes.get(vote, 0.0) + weight
    confidence = round(1.0 - miss, 3)
    is_ai = confidence >= AI_THRESHOLD
    category: Category | None = None
    if is_ai:
        declared = ev.by_key.get("cr")
        if declared is not None and declared[1] is not None:
            # An AI custom resource states what it is; the images inside are secondary.
            category = declared[1]
        elif votes:
            # Ties resolve in CATEGORIES order.
            ranked_votes = sorted(CATEGORIES, key=lambda c: (-votes.get(c, 0.0), CATEGORIES.index(c)))
            category = ranked_votes[0]
        else:
            category = "training" if kind in _TRAINING_KINDS else "inference"
    ranked = sorted(ev.by_key.values(), key=lambda e: -e[0])
    return Classification(
        is_ai=is_ai,
        category=category,
        confidence=confidence,
        evidence=[f"{text} (+{weight:.2f})" for weight, _, text in ranked],
    )


def pod_specs_of(
    obj: Mapping[str, Any], runtimes: Mapping[str, Mapping[str, Any]] | None = None
) -> list[PodTemplateView]:
    """``build_pod_specs``, plus the RayCluster that a RayJob or RayService embeds."""
    views = build_pod_specs(obj, runtimes)
    if views or not isinstance(obj, Mapping):
        return views
    spec = _map(obj.get("spec"))
    cluster = _map(spec.get("rayClusterSpec") or spec.get("rayClusterConfig"))
    if cluster and _group(str(obj.get("apiVersion") or "")).endswith("ray.io"):
        return build_pod_specs(
            {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "metadata": obj.get("metadata"),
                "spec": cluster,
            }
        )
    return views


def classify_workload(
    obj: Mapping[str, Any],
    *,
    views: Sequence[PodTemplateView] | None = None,
    runtimes: Mapping[str, Mapping[str, Any]] | None = None,
) -> Classification:
    """Classify a workload object (or Pod) as AI or not, with the evidence behind it.

    ``views`` lets a caller that already built the pod views pass them in; otherwise they
    are built here (``runtimes`` resolves KServe ServingRuntimes, as in ``build_pod_specs``).
    """
    ev = _Evidence()
    if not isinstance(obj, Mapping):
        return _decide(ev, "")
    kind = str(obj.get("kind") or "")
    api_version = str(obj.get("apiVersion") or "")
    rule = _resource_rule(api_version, kind)
    if rule is not None:
        ev.add(rule, f"kind {kind}")
    meta = _map(obj.get("metadata"))
    for owner in _list(meta.get("ownerReferences")):
        owner = _map(owner)
        owner_rule = _resource_rule(str(owner.get("apiVersion") or ""), str(owner.get("kind") or ""))
        if owner_rule is not None:
            ev.add(owner_rule, f"owned by {owner.get('kind')} {owner.get('name')}")
    labels = meta.get("labels")
    if isinstance(labels, Mapping):
        _labels(ev, {str(k): str(v) for k, v in labels.items()}, kind or "object")
    for view in views if views is not None else pod_specs_of(obj, runtimes):
        _pod(ev, view)
    return _decide(ev, kind)
