"""Offline CLIP tokenization of SegVol's text prompts.

``instant-clip-tokenizer`` carries OpenAI's CLIP BPE vocabulary inside its wheel (no hub
download, no torch dependency) and gives the same ids as the CLIP tokenizer SegVol was trained with.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from instant_clip_tokenizer import Tokenizer

from voxelprompt.errors import PromptError

__all__ = ["CLIP_CONTEXT_LENGTH", "SEGVOL_TEMPLATE", "SegVolTokenizer"]

CLIP_CONTEXT_LENGTH = 77
SEGVOL_TEMPLATE = "A computerized tomography of a {}."


class SegVolTokenizer:
    """Wraps class names in SegVol's sentence template and tokenizes them for CLIP.

    Args:
        template: format string with one ``{}`` for the class name.
        context_length: longest allowed sequence, start and end tokens included.
    """

    start_of_text = 49406
    end_of_text = 49407  # also the padding id, as in the tokenizer SegVol used

    def __init__(self, template: str = SEGVOL_TEMPLATE, context_length: int = CLIP_CONTEXT_LENGTH) -> None:
        if template.count("{}") != 1:
            raise ValueError(f"template must contain exactly one '{{}}', got {template!r}")
        self.template = template
        self.context_length = context_length
        self._bpe = Tokenizer()

    def encode(self, text: str) -> list[int]:
        """Token ids of one already-templated sentence, start and end of text included."""
        ids = [self.start_of_text, *(int(t) for t in self._bpe.encode(text)), self.end_of_text]
        if len(ids) > self.context_length:
            raise PromptError(f"text prompt is too long for CLIP ({len(ids)} > {self.context_length} tokens): {text!r}")
        return ids

    def __call__(self, names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize B class names, padded to the longest.

        Args:
            names: class names such as ``"liver"``; each is stripped of surrounding whitespace and
                put into the template.

        Returns:
            ``input_ids`` (B, L) int64 and ``attention_mask`` (B, L) int64 (0 on padding).
        """
        if isinstance(names, str):
            raise PromptError(f"names must be a sequence of class names, got the string {names!r}")
        if len(names) == 0 or any(not isinstance(n, str) or not n.strip() for n in names):
            raise PromptError(f"class names must be non-empty strings, got {list(names)!r}")
        rows = [self.encode(self.template.format(name.strip())) for name in names]
        length = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), length), self.end_of_text, dtype=torch.int64)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.int64)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row)
            attention_mask[i, : len(row)] = 1
        return input_ids, attention_mask
