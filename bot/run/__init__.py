"""Running the bot: starting the servers together (``serve``) and training the
Rasa model only when its inputs change (``training``).
"""
