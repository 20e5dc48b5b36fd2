"""Names the classifier and the posture checks both need to recognise (one list, two uses)."""

from __future__ import annotations

# API keys of hosted model providers (and the Azure OpenAI endpoint, a strong AI hint).
AI_PROVIDER_KEYS = frozenset(
    {
        "OPENAI_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "ANTHROPIC_API_KEY",
        "CLAUDE_API_KEY",
        "COHERE_API_KEY",
        "CO_API_KEY",
        "MISTRAL_API_KEY",
        "GROQ_API_KEY",
        "TOGETHER_API_KEY",
        "REPLICATE_API_TOKEN",
        "DEEPSEEK_API_KEY",
        "XAI_API_KEY",
        "PERPLEXITY_API_KEY",
        "FIREWORKS_API_KEY",
        "OPENROUTER_API_KEY",
        "GEMINI_API_KEY",
        "VOYAGE_API_KEY",
        "NGC_API_KEY",
        "NVIDIA_API_KEY",
        "AI21_API_KEY",
    }
)
HF_TOKENS = frozenset(
    {
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HUGGINGFACE_HUB_TOKEN",
        "HUGGINGFACEHUB_API_TOKEN",
        "HF_API_TOKEN",
    }
)
# Secrets an AI workload must never carry as plaintext env literals.
AI_SECRET_ENV = (
    (AI_PROVIDER_KEYS - {"AZURE_OPENAI_ENDPOINT"})
    | HF_TOKENS
    | frozenset(
        {
            "AZURE_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "GOOGLE_API_KEY",
            "PINECONE_API_KEY",
            "WEAVIATE_API_KEY",
            "QDRANT_API_KEY",
            "LANGCHAIN_API_KEY",
            "LANGSMITH_API_KEY",
            "WANDB_API_KEY",
            "TAVILY_API_KEY",
            "SERPAPI_API_KEY",
            "VLLM_API_KEY",
        }
    )
)
