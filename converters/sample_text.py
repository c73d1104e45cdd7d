"""Fixed multilingual sentences used as real tokenizer input for example inputs."""

SENTENCES: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Wikipedia is a free online encyclopedia written collaboratively by volunteers.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "ويكيبيديا موسوعة حرة يكتبها المتطوعون.",
    "विकिपीडिया एक मुक्त ऑनलाइन विश्वकोश है।",
    "维基百科是一个自由的在线百科全书。",
    "Die Bearbeitung wurde rückgängig gemacht, weil sie keine Quelle hatte.",
    "La page a été modifiée plusieurs fois au cours de la dernière semaine.",
)
