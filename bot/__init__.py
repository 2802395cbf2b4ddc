"""MOD Dermatology's isotretinoin education bot: the project's own library.

Each module holds one concern: ``settings`` (paths and environment),
``db`` (the SQL engine), ``clinic`` (the clinic's details), ``topics`` (the
topic map), ``knowledge`` (the curated knowledge base), ``replies`` (what a
patient is sent), ``spacy_pipeline`` (the on-disk spaCy pipeline),
``model_cache`` (training only when inputs change) and ``serve`` (running the
servers together).
"""
