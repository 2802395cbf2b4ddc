"""MOD Dermatology's isotretinoin education bot: the project's own library.

One package per concern; the process that runs each is named in brackets.

- ``settings``: every environment variable, its default and meaning (all).
- ``db``: the SQL engine and table helpers shared by the stores (all).
- ``content``: the topics, the clinic's details, the reviewed knowledge base
  and the replies composed from it (action server; ``python -m bot.content``
  loads the knowledge base).
- ``safety``: the mental-health screen, the staff handoffs with their spool,
  and the staff alerts (Rasa server and action server).
- ``nlu``: the custom Rasa NLU components and the on-disk spaCy pipeline (Rasa
  server, training).
- ``channels``: the patient channels: REST, the website's socket.io and chat
  page, and SMS (Rasa server; the chat page is its own small server).
- ``staff``: the staff command line (``python -m bot.staff``).
- ``run``: starting the servers together and training only when the inputs
  change (``make run``, ``make train``).
"""
