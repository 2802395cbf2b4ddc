"""What the bot knows and says: the topic map, the clinic's details, the
reviewed knowledge base and the answers composed from it.

Run by the action server; ``python -m bot.content load`` loads the knowledge
base into its database.
"""
