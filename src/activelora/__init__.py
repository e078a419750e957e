"""activelora: data-efficient LoRA fine-tuning of LLMs with active learning (STAR)."""

__version__ = "0.1.0"
