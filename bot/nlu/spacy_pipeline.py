"""The spaCy pipeline Rasa's ``SpacyNLP`` loads: blank English + lookup lemmatizer.

spaCy's trained English models cannot be downloaded on the clinic's machines,
so set-up builds this small pipeline (about 1 MB) from ``spacy-lookups-data``
and saves it to disk; nothing is fetched at run time. Rasa lowercases text
before spaCy sees it (``case_sensitive: false``), and the lemma table is
case-sensitive, so lowercase text is what it is built for.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import spacy
from spacy.language import Language

from bot import settings

PIPELINE_NAME = "isotretinoin_lookup"


def build_pipeline() -> Language:
    """A blank English pipeline whose lemmatizer uses the lookup table."""
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()  # loads the lookup tables from spacy-lookups-data
    nlp.meta["name"] = PIPELINE_NAME
    nlp.meta["description"] = (
        "Blank English tokenizer with the lookup lemmatizer (spacy-lookups-data)"
    )
    return nlp


def save_pipeline(target: Path = settings.SPACY_PIPELINE_DIR) -> Path:
    nlp = build_pipeline()
    target.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(target)
    return target


def load_pipeline(path: Path = settings.SPACY_PIPELINE_DIR) -> Language:
    return spacy.load(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.nlu.spacy_pipeline")
    parser.add_argument("--out", type=Path, default=settings.SPACY_PIPELINE_DIR)
    args = parser.parse_args(argv)
    path = save_pipeline(args.out)
    lemmas = [t.lemma_ for t in load_pipeline(path)("cutting feeling pores")]
    print(f"spaCy pipeline saved to {path} (lemmas check: {' '.join(lemmas)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
