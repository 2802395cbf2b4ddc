"""The custom Rasa NLU components and the on-disk spaCy pipeline, loaded by the
Rasa server and by training (config.yml names them by module path).
"""
