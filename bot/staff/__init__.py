"""The staff command line: handoffs to call back (``python -m bot.staff``)."""
