"""The causal LM and its LoRA adapter, below any active learning.

- :mod:`.loading`        load a model and tokenizer (embedded default, Hugging Face id, folder);
- :mod:`.precision`      which floating-point type it computes in (``model.dtype``);
- :mod:`.lora`           attach, reset, save and load adapters; Monte-Carlo dropout on and off;
- :mod:`.lora_dropout`, :mod:`.keyed_dropout`  STAR's dropout on the A inputs, per-example masks;
- :mod:`.text`           examples to token ids (prompts, prompt + target);
- :mod:`.generation`     batched greedy generation and the log-probabilities of what was generated;
- :mod:`.heads`          the decoder stack and the LM head taken apart;
- :mod:`.evaluation`     answers generated for examples, graded against their gold answers;
- :mod:`.regularization` what one LoRA training run regularises (STAR's hybrid, or none).
"""
