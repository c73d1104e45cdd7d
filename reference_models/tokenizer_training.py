"""Training subword tokenizers with `tokenizers`, saved as Hugging Face fast tokenizers.

One trainer for every reference model that reads text; the recipes below are
data (which pre-processing style, which special tokens), and the two
wrappers give the tokenizer class a researcher's checkpoint would carry: a
BERT WordPiece tokenizer and an mBART-50 SentencePiece-style BPE tokenizer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import BertTokenizerFast, MBart50TokenizerFast
from transformers.models.mbart50.tokenization_mbart50_fast import FAIRSEQ_LANGUAGE_CODES

Style = Literal["bert", "sentencepiece"]

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# mBART's order puts <s>, <pad>, </s>, <unk> at ids 0..3, as its config expects;
# every mBART-50 language code is a special token so MBart50TokenizerFast finds
# them all in the vocabulary rather than appending them.
MBART_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>", *FAIRSEQ_LANGUAGE_CODES)


@dataclass(frozen=True, kw_only=True)
class TokenizerRecipe:
    """What to train: pre-processing style, vocabulary size, special tokens (first ids, in order).

    Styles:
    - "bert": BERT's cased multilingual pre-processing (split on whitespace
      and punctuation, one token per CJK character, accents kept) and a
      WordPiece vocabulary with "##" continuation pieces.
    - "sentencepiece": SentencePiece's (NFKC, "▁" marks word starts) and a
      BPE vocabulary, as in mBART's sentencepiece.bpe.model.
    """

    style: Style
    vocab_size: int
    special_tokens: tuple[str, ...]
    unk_token: str

    def __post_init__(self) -> None:
        """Validate the recipe before spending time training it."""
        if self.style not in ("bert", "sentencepiece"):
            raise ValueError(
                f"tokenizer style must be 'bert' or 'sentencepiece', got {self.style!r}"
            )
        if self.vocab_size <= len(self.special_tokens):
            raise ValueError(
                f"vocab_size {self.vocab_size} must exceed the "
                f"{len(self.special_tokens)} special tokens"
            )
        if self.unk_token not in self.special_tokens:
            raise ValueError(
                f"unk_token {self.unk_token!r} must be one of the special tokens "
                f"{self.special_tokens}"
            )


def train_tokenizer(texts: Iterable[str], recipe: TokenizerRecipe) -> Tokenizer:
    """Train a `tokenizers.Tokenizer` on `texts`; the same texts and recipe give the same bytes.

    Both styles train `tokenizers`' BPE trainer without a continuation
    prefix, the one trainer here that is reproducible: its alphabet is sorted
    and ties between merges break by token id. (The WordPiece trainer gives
    "##x" pieces ids in hash-map order, so ties break differently from run to
    run, and so does the vocabulary.) The "bert" style then turns the BPE
    segmentation of the corpus into a WordPiece vocabulary.
    """
    corpus = list(texts)
    tokenizer = Tokenizer(models.BPE(unk_token=recipe.unk_token))
    if recipe.style == "bert":
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
        )
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    else:
        tokenizer.normalizer = normalizers.NFKC()
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=recipe.vocab_size,
        special_tokens=list(recipe.special_tokens),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    if recipe.style == "bert":
        vocab = _wordpiece_vocab(tokenizer, corpus, recipe)
        tokenizer.model = models.WordPiece(
            vocab=vocab, unk_token=recipe.unk_token, max_input_chars_per_word=100
        )
        tokenizer.decoder = decoders.WordPiece(prefix=_CONTINUATION)
    return tokenizer


_CONTINUATION = "##"


def _wordpiece_vocab(bpe: Tokenizer, corpus: list[str], recipe: TokenizerRecipe) -> dict[str, int]:
    """A WordPiece vocabulary from a BPE model: the pieces it cuts the corpus into, most used first.

    A piece that starts a word keeps its spelling; one inside a word gets the
    "##" prefix. Every character of the corpus is kept in both forms, so no
    word of the corpus becomes [UNK]. Ties in use are broken by spelling.
    """
    pre_tokenize, normalize = bpe.pre_tokenizer, bpe.normalizer
    if pre_tokenize is None or normalize is None:
        raise ValueError(
            "the BPE tokenizer needs a normalizer and a pre-tokenizer "
            "to derive a WordPiece vocabulary"
        )
    words: Counter[str] = Counter(
        word
        for text in corpus
        for word, _ in pre_tokenize.pre_tokenize_str(normalize.normalize_str(text))
    )
    uses: Counter[str] = Counter()
    for word, count in words.items():
        for position, token in enumerate(bpe.model.tokenize(word)):
            uses[token.value if position == 0 else _CONTINUATION + token.value] += count
    characters = sorted({c for word in words for c in word})
    alphabet = [*characters, *(_CONTINUATION + c for c in characters)]
    kept = set(recipe.special_tokens) | set(alphabet)
    pieces = sorted((p for p in uses if p not in kept), key=lambda p: (-uses[p], p))
    tokens = [*recipe.special_tokens, *alphabet, *pieces][: recipe.vocab_size]
    if len(tokens) < len(recipe.special_tokens) + len(alphabet):
        raise ValueError(
            f"vocab_size {recipe.vocab_size} cannot hold the "
            f"{len(recipe.special_tokens)} special tokens "
            f"and the corpus's {len(alphabet)} characters with and without '##'"
        )
    return {token: index for index, token in enumerate(tokens)}


def bert_tokenizer(
    texts: Iterable[str], *, vocab_size: int, model_max_length: int = 512
) -> BertTokenizerFast:
    """A cased multilingual BERT WordPiece tokenizer trained on `texts`.

    Pairs encode as `[CLS] A [SEP] B [SEP]` with token type ids 0 / 1, as BERT's do.
    """
    recipe = TokenizerRecipe(
        style="bert", vocab_size=vocab_size, special_tokens=BERT_SPECIAL_TOKENS, unk_token="[UNK]"
    )
    tokenizer = train_tokenizer(texts, recipe)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return BertTokenizerFast(
        tokenizer_object=tokenizer,
        do_lower_case=False,
        strip_accents=False,
        tokenize_chinese_chars=True,
        model_max_length=model_max_length,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )


def mbart_tokenizer(
    texts: Iterable[str], *, vocab_size: int, model_max_length: int = 1024
) -> MBart50TokenizerFast:
    """An mBART-50 style SentencePiece BPE tokenizer trained on `texts`.

    Text encodes as `[lang_code] X </s>` (mBART-50's format) for the
    `src_lang` / `tgt_lang` set on the tokenizer.
    """
    recipe = TokenizerRecipe(
        style="sentencepiece",
        vocab_size=vocab_size,
        special_tokens=MBART_SPECIAL_TOKENS,
        unk_token="<unk>",
    )
    tokenizer = train_tokenizer(texts, recipe)
    return MBart50TokenizerFast(
        tokenizer_object=tokenizer,
        src_lang="en_XX",
        tgt_lang="en_XX",
        model_max_length=model_max_length,
    )
